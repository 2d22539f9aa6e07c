/**
 * Character-level helpers shared by the header-value parsers. Everything here is plain index scanning so that no
 * input, however hostile, can make a parser backtrack.
 */

// RFC 3261 §25.1: token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
const TOKEN_EXTRA = "-.!%*_+`'~";

/** 1 at the ASCII codes of token characters: every header name, parameter and method goes through it. */
const TOKEN_CODES = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  TOKEN_CODES[c] = alnum || TOKEN_EXTRA.includes(String.fromCharCode(c)) ? 1 : 0;
}

/** `c` a UTF-16 code unit (NaN past the end of a string: false). */
function isTokenCode(c: number): boolean {
  return c < 128 && TOKEN_CODES[c] === 1;
}

export function isTokenChar(ch: string): boolean {
  return isTokenCode(ch.charCodeAt(0));
}

export function isToken(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) if (!isTokenCode(s.charCodeAt(i))) return false;
  return true;
}

export function isWs(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';
}

/** Index of the first non-whitespace character at or after `i`. */
export function skipWs(s: string, i: number): number {
  while (i < s.length && isWs(s[i])) i++;
  return i;
}

/** End index of the token starting at `i` (== i when there is none). */
export function tokenEnd(s: string, i: number): number {
  while (i < s.length && isTokenCode(s.charCodeAt(i))) i++;
  return i;
}

/**
 * Given `s[i] === '"'`, return the index just past the closing quote, or -1 when the quoted string is unterminated.
 * Backslash escapes one character (RFC 3261 quoted-pair).
 */
export function quotedEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const ch = s[j];
    if (ch === '\\') j++;
    else if (ch === '"') return j + 1;
  }
  return -1;
}

export function isDigits(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}

/** Non-negative decimal integer with at most `maxDigits` digits, or undefined. */
export function parseDecimal(s: string, maxDigits: number): number | undefined {
  if (s.length > maxDigits || !isDigits(s)) return undefined;
  return Number(s);
}

/**
 * A record with no prototype: parameter names come off the wire, and names like `__proto__` or `constructor` must
 * behave as plain keys.
 */
export function emptyRecord<T>(): Record<string, T> {
  return Object.create(null) as Record<string, T>;
}

/**
 * Split a header value on commas that are not inside quotes or angle brackets.
 * Used for list headers such as Via, Contact, Route.
 */
export function splitHeaderList(value: string): string[] {
  if (!value.includes(',')) {
    // One value (nearly every Via, Route, Contact line): what the scan below would return, without the scan.
    const whole = value.trim();
    return whole ? [whole] : [];
  }
  const out: string[] = [];
  let depthAngle = 0;
  let inQuote = false;
  let start = 0;
  for (let i = 0; i < value.length; i++) {
    const ch = value[i];
    if (inQuote) {
      if (ch === '\\') i++;
      else if (ch === '"') inQuote = false;
    } else if (ch === '"') inQuote = true;
    else if (ch === '<') depthAngle++;
    else if (ch === '>') depthAngle = Math.max(0, depthAngle - 1);
    else if (ch === ',' && depthAngle === 0) {
      const part = value.slice(start, i).trim();
      if (part) out.push(part);
      start = i + 1;
    }
  }
  const last = value.slice(start).trim();
  if (last) out.push(last);
  return out;
}
