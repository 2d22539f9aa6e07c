import { describe, expect, it } from 'vitest';
import { StreamFramer } from '../../../src/sip/embedded/parser.ts';
import type { FramerResult } from '../../../src/sip/embedded/parser.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { BYE, INVITE, sip } from './sip-samples.ts';

/** INVITE (with SDP body), a CRLFCRLF keep-alive, then a BYE. */
const STREAM = Buffer.concat([INVITE, Buffer.from('\r\n\r\n'), BYE]);

function frames(results: FramerResult[]): Buffer[] {
  return results.map((r) => {
    if (!r.ok) throw new Error(`unexpected framer error: ${r.error}`);
    return r.data;
  });
}

describe('StreamFramer', () => {
  it('returns several messages from one chunk', () => {
    const out = frames(new StreamFramer().push(STREAM));
    expect(out).toHaveLength(2);
    expect(out[0]!.equals(INVITE)).toBe(true);
    expect(out[1]!.equals(BYE)).toBe(true);
  });

  it('gives the same 2 messages for a split at every byte offset', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const f = new StreamFramer();
      const out = [...frames(f.push(STREAM.subarray(0, cut))), ...frames(f.push(STREAM.subarray(cut)))];
      expect(out.length, `cut at ${cut}`).toBe(2);
      expect(out[0]!.equals(INVITE), `cut at ${cut}`).toBe(true);
      expect(out[1]!.equals(BYE), `cut at ${cut}`).toBe(true);
      expect(f.pending).toBe(0);
    }
  });

  it('handles a byte-at-a-time stream and three-way splits around the header end', () => {
    const f = new StreamFramer();
    const out: Buffer[] = [];
    for (let i = 0; i < STREAM.length; i++) out.push(...frames(f.push(STREAM.subarray(i, i + 1))));
    expect(out.map((b) => b.toString('latin1'))).toEqual([INVITE.toString('latin1'), BYE.toString('latin1')]);

    const headEnd = INVITE.indexOf('\r\n\r\n');
    for (let a = headEnd - 2; a <= headEnd + 4; a++) {
      for (let b = a; b <= headEnd + 5; b++) {
        const g = new StreamFramer();
        const got = [
          ...frames(g.push(STREAM.subarray(0, a))),
          ...frames(g.push(STREAM.subarray(a, b))),
          ...frames(g.push(STREAM.subarray(b))),
        ];
        expect(got).toHaveLength(2);
        expect(got[0]!.equals(INVITE)).toBe(true);
      }
    }
  });

  it('feeds framed buffers to parseMessage', () => {
    const [a, b] = frames(new StreamFramer().push(STREAM));
    const pa = parseMessage(a!);
    const pb = parseMessage(b!);
    expect(pa.ok && pa.message.kind === 'request' && pa.message.method).toBe('INVITE');
    expect(pb.ok && pb.message.kind === 'request' && pb.message.method).toBe('BYE');
  });

  it('skips keep-alives with nothing else and honours the compact l: form', () => {
    const f = new StreamFramer();
    expect(f.push(Buffer.from('\r\n\r\n'))).toEqual([]);
    expect(f.push(Buffer.from('\r\n'))).toEqual([]);
    const msg = sip(['MESSAGE sip:a@b SIP/2.0', 'l: 5'], 'hello');
    const out = frames(f.push(Buffer.concat([msg, Buffer.from('\r\n')])));
    expect(out).toHaveLength(1);
    expect(out[0]!.equals(msg)).toBe(true);
  });

  it('counts CRLFCRLF pings between messages, split or not, but not a lone CRLF pong', () => {
    const f = new StreamFramer();
    f.push(Buffer.from('\r\n'));
    expect(f.takePings()).toBe(0);
    f.push(Buffer.from('\r\n\r\n'));
    expect(f.takePings()).toBe(1);
    for (const byte of '\r\n\r\n\r\n\r\n') f.push(Buffer.from(byte));
    expect(f.takePings()).toBe(2);
    expect(f.takePings()).toBe(0);
    // A ping right after a message, in the same chunk as the next one; CRLFs inside a message are not pings.
    expect(frames(f.push(STREAM))).toHaveLength(2);
    expect(f.takePings()).toBe(1);
    // A message start resets a half-seen ping.
    f.push(Buffer.concat([Buffer.from('\r\n'), BYE, Buffer.from('\r\n')]));
    expect(f.takePings()).toBe(0);
  });

  it('keeps a returned message intact when the caller reuses its chunk buffer', () => {
    const f = new StreamFramer();
    const chunk = Buffer.from(BYE);
    const [out] = frames(f.push(chunk));
    chunk.fill(0);
    expect(out!.equals(BYE)).toBe(true);
  });

  it('fails fatally when Content-Length is missing, and ignores input afterwards', () => {
    const f = new StreamFramer();
    const r = f.push(Buffer.concat([BYE, sip(['OPTIONS sip:a@b SIP/2.0', 'Call-ID: x'])]));
    expect(r).toHaveLength(2);
    expect(r[0]!.ok).toBe(true);
    expect(r[1]).toEqual({ ok: false, error: 'missing Content-Length', fatal: true });
    expect(f.push(BYE)).toEqual([]);
  });

  it('fails fatally on a bad or conflicting Content-Length', () => {
    expect(new StreamFramer().push(sip(['BYE sip:a@b SIP/2.0', 'Content-Length: -1']))).toEqual([
      { ok: false, error: 'bad Content-Length', fatal: true },
    ]);
    expect(new StreamFramer().push(sip(['BYE sip:a@b SIP/2.0', 'Content-Length: 1', 'l: 2']))).toEqual([
      { ok: false, error: 'conflicting Content-Length', fatal: true },
    ]);
  });

  it('fails fatally when the header block outgrows maxMessageSize', () => {
    const f = new StreamFramer({ maxMessageSize: 1000 });
    expect(f.push(Buffer.from('INVITE sip:a@b SIP/2.0\r\nX-Pad: '))).toEqual([]);
    const r = f.push(Buffer.alloc(2000, 0x61));
    expect(r).toEqual([{ ok: false, error: 'header block too large', fatal: true }]);
    expect(f.pending).toBe(0);
  });

  it('fails fatally when Content-Length makes the message too large', () => {
    const f = new StreamFramer({ maxMessageSize: 1000 });
    expect(f.push(sip(['INVITE sip:a@b SIP/2.0', 'Content-Length: 5000']))).toEqual([
      { ok: false, error: 'message too large', fatal: true },
    ]);
  });

  it('frames a long stream cut into chunks of varying size', () => {
    const stream = Buffer.concat(
      Array.from({ length: 500 }, (_, i) => (i % 3 === 0 ? Buffer.concat([Buffer.from('\r\n'), INVITE]) : BYE)),
    );
    const f = new StreamFramer();
    const out: Buffer[] = [];
    for (let pos = 0, size = 1; pos < stream.length; pos += size, size = (size * 7 + 3) % 701 || 1) {
      out.push(...frames(f.push(stream.subarray(pos, pos + size))));
    }
    expect(out).toHaveLength(500);
    expect(out.filter((b) => b.equals(INVITE))).toHaveLength(167);
    expect(out.filter((b) => b.equals(BYE))).toHaveLength(333);
    expect(f.pending).toBe(0);
  });
});
