/** Wire encoding of a SipMessage (RFC 3261 §7): start line, headers in order, Content-Length, blank line, body. */
import type { SipMessage } from './message.ts';

/**
 * A CR or LF inside a value set by application code would start a new header line on the wire (header injection),
 * so line breaks are flattened to a space.
 */
function oneLine(s: string): string {
  return s.includes('\r') || s.includes('\n') ? s.replace(/[\r\n]+/g, ' ') : s;
}

export function serializeMessage(msg: SipMessage): Buffer {
  const body = msg.body ?? Buffer.alloc(0);
  const parts: string[] = [
    msg.kind === 'request'
      ? `${oneLine(msg.method)} ${oneLine(msg.uri)} ${oneLine(msg.version)}`
      : `${oneLine(msg.version)} ${msg.status} ${oneLine(msg.reason)}`,
  ];
  const contentLength = `Content-Length: ${body.length}`;
  let wroteLength = false;
  for (const [name, value] of msg.headers.lines()) {
    // The stored value may be stale (body rewritten by the B2BUA), so it is always recomputed in place.
    if (name.toLowerCase() === 'content-length') {
      if (!wroteLength) parts.push(contentLength);
      wroteLength = true;
      continue;
    }
    parts.push(`${oneLine(name)}: ${oneLine(value)}`);
  }
  if (!wroteLength) parts.push(contentLength);
  parts.push('', '');
  const head = Buffer.from(parts.join('\r\n'), 'utf8');
  return body.length === 0 ? head : Buffer.concat([head, body], head.length + body.length);
}
