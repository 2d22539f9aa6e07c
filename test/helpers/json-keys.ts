/**
 * Finds keys repeated inside one JSON object of a raw JSON text. JSON.parse keeps the last of two equal keys, so a
 * log line with `sessionId` bound on the logger and passed again at the call site looks fine once parsed: the
 * duplicate is only visible in the text.
 */

/** The repeated keys of `text`, each as its path (`a.b`); empty when every object's keys are distinct. */
export function duplicateKeys(text: string): string[] {
  const found: string[] = [];
  // One frame per open container: its path, and for an object its keys so far (null for an array).
  const stack: Array<{ path: string; keys: Set<string> | null; lastKey: string }> = [];
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    const top = stack.at(-1);
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (expectKey && top?.keys) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        top.lastKey = top.path ? `${top.path}.${key}` : key;
        if (top.keys.has(key)) found.push(top.lastKey);
        top.keys.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      const path = !top ? '' : top.keys ? top.lastKey : top.path;
      stack.push({ path, keys: c === '{' ? new Set() : null, lastKey: path });
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      expectKey = top?.keys != null;
    }
  }
  return found;
}
