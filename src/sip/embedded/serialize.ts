/** Wire encoding of a SipMessage (RFC 3261 §7): start line, headers in order, Content-Length, blank line, body. */
import { EMPTY_BODY, SipHeaders, type SipMessage } from './message.ts';

/**
 * A CR or LF inside a value set by application code would start a new header line on the wire (header injection),
 * so line breaks are flattened to a space.
 */
function oneLine(s: string): string {
  return s.includes('\r') || s.includes('\n') ? s.replace(/[\r\n]+/g, ' ') : s;
}

export function serializeMessage(msg: SipMessage): Buffer {
  const body = msg.body ?? EMPTY_BODY;
  // One string grown in place (V8 ropes) rather than an array of parts joined: this runs for every message sent.
  let head =
    msg.kind === 'request'
      ? `${oneLine(msg.method)} ${oneLine(msg.uri)} ${oneLine(msg.version)}\r\n`
      : `${oneLine(msg.version)} ${msg.status} ${oneLine(msg.reason)}\r\n`;
  const lines = msg.headers.lines();
  const keys = msg.headers.keys();
  let wroteLength = false;
  for (let i = 0; i < lines.length; i++) {
    // The stored value may be stale (body rewritten by the B2BUA), so it is always recomputed in place.
    if (keys[i] === 'content-length') {
      if (!wroteLength) head += `Content-Length: ${body.length}\r\n`;
      wroteLength = true;
      continue;
    }
    const [name, value] = lines[i];
    head += `${oneLine(name)}: ${oneLine(value)}\r\n`;
  }
  if (!wroteLength) head += `Content-Length: ${body.length}\r\n`;
  head += '\r\n';
  if (body.length === 0) return Buffer.from(head, 'utf8');
  // Head and body written into one buffer: Buffer.concat would copy the head a second time.
  const headLength = Buffer.byteLength(head, 'utf8');
  const wire = Buffer.allocUnsafe(headLength + body.length);
  wire.write(head, 0, 'utf8');
  body.copy(wire, headLength);
  return wire;
}

/** Shared by every encoded copy: nothing reads or writes its headers. */
const NO_HEADERS = new SipHeaders();

/**
 * What a transaction keeps to resend a message it sent (a final response while Completed, the ACK of a non-2xx): the
 * bytes the transport already encoded, in memory of their own, and the start line the counters read. The parsed
 * message would keep its headers, and through their values the text of the request it answers, for up to 32 s.
 * Without `wire` (a transport that does not hand it back) the message itself is kept.
 */
export function encodedCopy<T extends SipMessage>(msg: T, wire: Buffer | undefined): T {
  if (wire === undefined) return msg;
  // Not a Buffer.from copy: a small one lands in Node's shared 8 KiB pool, and a kept slice pins the whole slab.
  const own = Buffer.allocUnsafeSlow(wire.length);
  wire.copy(own);
  return { ...msg, headers: NO_HEADERS, body: EMPTY_BODY, parsedVia: undefined, source: undefined, wire: own };
}
