/**
 * Splits a TCP byte stream into whole SIP messages (RFC 3261 §18.3): the header block ends at the first empty line
 * and Content-Length, mandatory on streams, gives the body size. Framing only looks at Content-Length; everything
 * else is left to parseMessage.
 *
 * Bytes are appended to one growable buffer (amortised linear) so a peer trickling one byte per segment cannot make
 * us re-copy the pending data on every push.
 *
 * CR/LF bytes between messages are keep-alives (RFC 5626 §3.5.1): skipped, but each complete CRLFCRLF "ping" is
 * counted, because the side that accepted the connection owes the peer a CRLF "pong" for it (takePings()).
 */

/** The ping: CR LF CR LF. */
const PING = [0x0d, 0x0a, 0x0d, 0x0a] as const;

export type FramerResult = { ok: true; data: Buffer } | { ok: false; error: string; fatal: boolean };

export interface StreamFramerOptions {
  /** Largest message (header block + body) accepted, in bytes (default 65535). */
  maxMessageSize?: number;
}

export class StreamFramer {
  readonly #maxSize: number;
  #store: Buffer = Buffer.alloc(0);
  /** Pending bytes are store[start, end). */
  #start = 0;
  #end = 0;
  /** Where the blank-line search resumes, so each byte is examined a bounded number of times. */
  #scanFrom = 0;
  /** Total size of the message at `start` once its header block has been read, else -1. */
  #need = -1;
  /** Set after a fatal error: the connection must be closed, so further input is ignored. */
  #dead = false;
  /** How much of a CRLFCRLF ping the skipped bytes have matched so far (0-3); pings may arrive split. */
  #pingMatched = 0;
  #pings = 0;

  constructor(opts?: StreamFramerOptions) {
    this.#maxSize = opts?.maxMessageSize ?? 65535;
  }

  /** Bytes buffered but not yet returned as a message. */
  get pending(): number {
    return this.#end - this.#start;
  }

  /** CRLFCRLF pings seen between messages since the last call (a lone CRLF, a pong, is not one). */
  takePings(): number {
    const n = this.#pings;
    this.#pings = 0;
    return n;
  }

  push(chunk: Buffer): FramerResult[] {
    if (this.#dead || chunk.length === 0) return [];
    this.#append(chunk);
    const out: FramerResult[] = [];
    for (;;) {
      if (this.#need < 0) {
        this.#skipKeepAlives();
        if (this.#start === this.#end) break;
        this.#pingMatched = 0;
        const bodyStart = this.#findBlankLine();
        if (bodyStart === -1) {
          if (this.#end - this.#start > this.#maxSize) return this.#fail(out, 'header block too large');
          break;
        }
        const cl = contentLength(this.#store.toString('latin1', this.#start, bodyStart));
        if (typeof cl === 'string') return this.#fail(out, cl);
        const total = bodyStart - this.#start + cl;
        if (total > this.#maxSize) return this.#fail(out, 'message too large');
        this.#need = total;
      }
      if (this.#end - this.#start < this.#need) break;
      out.push({ ok: true, data: Buffer.from(this.#store.subarray(this.#start, this.#start + this.#need)) });
      this.#start += this.#need;
      this.#scanFrom = this.#start;
      this.#need = -1;
    }
    if (this.#start === this.#end) this.#start = this.#end = this.#scanFrom = 0;
    return out;
  }

  /** CRLF keep-alives between messages carry no message: skip them, counting whole pings. */
  #skipKeepAlives(): void {
    const from = this.#start;
    for (; this.#start < this.#end; this.#start++) {
      const b = this.#store[this.#start];
      if (b !== 0x0d && b !== 0x0a) break;
      if (b === PING[this.#pingMatched]) this.#pingMatched++;
      else this.#pingMatched = b === 0x0d ? 1 : 0;
      if (this.#pingMatched === PING.length) {
        this.#pings++;
        this.#pingMatched = 0;
      }
    }
    // Only when bytes were skipped: the blank-line search of a half-read header block resumes where it stopped.
    if (this.#start !== from) this.#scanFrom = this.#start;
  }

  #fail(out: FramerResult[], error: string): FramerResult[] {
    this.#dead = true;
    this.#store = Buffer.alloc(0);
    this.#start = this.#end = this.#scanFrom = 0;
    out.push({ ok: false, error, fatal: true });
    return out;
  }

  #append(chunk: Buffer): void {
    const pending = this.#end - this.#start;
    if (this.#end + chunk.length > this.#store.length) {
      if (pending + chunk.length <= this.#store.length >> 1) {
        this.#store.copyWithin(0, this.#start, this.#end);
      } else {
        const next = Buffer.allocUnsafe(Math.max(pending + chunk.length, this.#store.length * 2, 4096));
        this.#store.copy(next, 0, this.#start, this.#end);
        this.#store = next;
      }
      this.#scanFrom -= this.#start;
      this.#start = 0;
      this.#end = pending;
    }
    chunk.copy(this.#store, this.#end);
    this.#end += chunk.length;
  }

  /** Index just past the empty line ending the header block at `start`, or -1 if it has not arrived yet. */
  #findBlankLine(): number {
    const s = this.#store.subarray(0, this.#end);
    let from = Math.max(this.#scanFrom, this.#start);
    for (;;) {
      const nl = s.indexOf(0x0a, from);
      if (nl === -1) break;
      if (nl + 1 < this.#end && s[nl + 1] === 0x0a) return nl + 2;
      if (nl + 2 < this.#end && s[nl + 1] === 0x0d && s[nl + 2] === 0x0a) return nl + 3;
      from = nl + 1;
    }
    // The last two bytes may begin a terminator whose rest is still in flight: look at them again next time.
    this.#scanFrom = Math.max(this.#start, this.#end - 3);
    return -1;
  }
}

/** Content-Length of a header block (long or compact form), or an error text. */
function contentLength(head: string): number | string {
  let found: number | undefined;
  const lines = head.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name !== 'content-length' && name !== 'l') continue;
    const text = line.slice(colon + 1).trim();
    if (!/^[0-9]{1,10}$/.test(text)) return 'bad Content-Length';
    const n = Number(text);
    if (found !== undefined && found !== n) return 'conflicting Content-Length';
    found = n;
  }
  return found ?? 'missing Content-Length';
}
