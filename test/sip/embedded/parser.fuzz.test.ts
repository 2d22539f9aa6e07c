import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { StreamFramer, parseMessage } from '../../../src/sip/embedded/parser.ts';
import type { ParseResult } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { BYE, INVITE, RESPONSE } from './sip-samples.ts';

const SEEDS = [INVITE, BYE, RESPONSE];
const NASTY = [
  '\r',
  '\n',
  '\r\n',
  '\r\n\r\n',
  ':',
  '"',
  '\\',
  '<',
  '>',
  ';',
  ',',
  ' ',
  '\t',
  '%',
  '\0',
  '=',
  '[',
  ']',
  '@',
  ' \r\n ',
];

type Mutation =
  | { kind: 'flip'; at: number; byte: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicate'; at: number; len: number; to: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'delete'; at: number; len: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('duplicate' as const),
    at: fc.nat(),
    len: fc.integer({ min: 1, max: 80 }),
    to: fc.nat(),
  }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fc.constantFrom(...NASTY) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.integer({ min: 1, max: 20 }) }),
);

function mutate(base: Buffer, muts: Mutation[]): Buffer {
  let b = Buffer.from(base);
  for (const m of muts) {
    const at = b.length === 0 ? 0 : m.at % (b.length + 1);
    if (m.kind === 'flip') {
      if (b.length) b[at % b.length] = m.byte;
    } else if (m.kind === 'truncate') b = b.subarray(0, at);
    else if (m.kind === 'duplicate') {
      const piece = b.subarray(at, at + m.len);
      const to = m.to % (b.length + 1);
      b = Buffer.concat([b.subarray(0, to), piece, b.subarray(to)]);
    } else if (m.kind === 'insert')
      b = Buffer.concat([b.subarray(0, at), Buffer.from(m.text, 'latin1'), b.subarray(at)]);
    else b = Buffer.concat([b.subarray(0, at), b.subarray(at + m.len)]);
  }
  return b;
}

const mutated = fc
  .tuple(fc.constantFrom(...SEEDS), fc.array(mutation, { minLength: 1, maxLength: 6 }))
  .map(([base, muts]) => mutate(base, muts));

/** Strings built from SIP-looking fragments reach deeper parser states than uniform random bytes. */
const sipish = fc
  .array(
    fc.constantFrom(
      ...NASTY,
      'INVITE',
      'SIP/2.0',
      'sip:',
      'Via',
      'From',
      'To',
      'Call-ID',
      'CSeq',
      'Content-Length',
      'l',
      'v',
      'f',
      't',
      'i',
      '1',
      '0',
      '200',
      '/',
      'UDP',
      'a@b',
      ';tag=',
      ';branch=z9hG4bK',
      '[::1]',
      'x',
    ),
    { maxLength: 60 },
  )
  .map((parts) => Buffer.from(parts.join(''), 'latin1'));

/** A result is well-formed, and its error text is usable as a reason phrase. */
function checkResult(r: ParseResult): void {
  expect(typeof r.ok).toBe('boolean');
  if (!r.ok) {
    expect(r.error.length).toBeGreaterThan(0);
    expect(r.error.length).toBeLessThan(80);
    expect(r.error).not.toMatch(/[\r\n]/);
    return;
  }
  // Whatever we accept, we can serialize and accept again with the same content.
  const again = parseMessage(serializeMessage(r.message));
  expect(again.ok).toBe(true);
  if (again.ok) {
    // Content-Length is the one header the serializer rewrites (added when absent, e.g. UDP without it).
    const withoutLength = (m: typeof r.message) => m.headers.lines().filter(([n]) => n !== 'Content-Length');
    expect(withoutLength(again.message)).toEqual(withoutLength(r.message));
    expect(again.message.headers.get('Content-Length')).toBe(String(r.message.body.length));
    expect(again.message.body.equals(r.message.body)).toBe(true);
  }
}

describe('parser fuzzing', () => {
  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        checkResult(parseMessage(Buffer.from(bytes)));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on SIP-looking fragments', () => {
    fc.assert(
      fc.property(sipish, (data) => {
        checkResult(parseMessage(data));
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on mutated valid messages', () => {
    fc.assert(
      fc.property(mutated, (data) => {
        checkResult(parseMessage(data));
        checkResult(parseMessage(data, { maxSize: 300 }));
      }),
      { numRuns: 2000 },
    );
  });

  it('StreamFramer never throws on mutated streams cut at random points', () => {
    fc.assert(
      fc.property(
        fc.array(mutated, { minLength: 1, maxLength: 3 }),
        fc.array(fc.integer({ min: 1, max: 400 }), { minLength: 1, maxLength: 10 }),
        (msgs, sizes) => {
          const stream = Buffer.concat(msgs);
          const f = new StreamFramer({ maxMessageSize: 2000 });
          let emitted = 0;
          let fatal = false;
          for (let pos = 0, k = 0; pos < stream.length; k++) {
            const size = sizes[k % sizes.length]!;
            for (const r of f.push(stream.subarray(pos, pos + size))) {
              if (r.ok) {
                emitted += r.data.length;
                checkResult(parseMessage(r.data));
              } else {
                expect(r.fatal).toBe(true);
                fatal = true;
              }
            }
            pos += size;
          }
          expect(emitted).toBeLessThanOrEqual(stream.length);
          if (fatal) expect(f.pending).toBe(0);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('finishes on large pathological inputs', () => {
    const head = 'INVITE sip:a@b SIP/2.0\r\n';
    for (const filler of ['"', '\\"', '<', ';', ':', ' ', '\r', '\n ', 'a@', '%', '[', ';a=', ', ']) {
      const body = filler.repeat(Math.floor(60000 / filler.length));
      for (const data of [
        Buffer.from(`${head}From: ${body}\r\nTo: ${body}\r\nVia: SIP/2.0/UDP ${body}\r\n\r\n`, 'latin1'),
        Buffer.from(`${head}${body}`, 'latin1'),
        Buffer.from(`${body}\r\n\r\n`, 'latin1'),
      ]) {
        const r = parseMessage(data, { maxSize: 1 << 20 });
        expect(r.ok).toBe(false);
        const f = new StreamFramer({ maxMessageSize: 1 << 20 });
        for (let i = 0; i < data.length; i += 997) f.push(data.subarray(i, i + 997));
      }
    }
  });
});
