/**
 * Hostile input against a running engine whose application answers every INVITE, sends re-INVITEs and hangs up:
 * header values of INVITEs replaced by odd but parseable text (the parser fuzz covers unparseable bytes). Nothing
 * may throw out of a handler or leave an unhandled rejection (vitest fails the run on either), and afterwards a
 * normal engine-to-engine call still works.
 */
import dgram from 'node:dgram';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';

const SDP = Buffer.from(
  'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n',
);
const engines: EmbeddedEngine[] = [];
afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

function engine(): EmbeddedEngine {
  const e = new EmbeddedEngine({
    host: '127.0.0.1',
    port: 0,
    transports: ['udp'],
    publicAddress: '127.0.0.1',
    userAgent: 'fuzz',
    logger: pino({ level: 'silent' }),
    timers: { T1: 50, T2: 200, T4: 200 },
  });
  engines.push(e);
  return e;
}

const oddValue = fc.oneof(
  fc.constantFrom(
    '',
    '*',
    '<>',
    '<sip:>',
    'sip:@',
    '<sip:a@[::1]:99999>',
    '"unterminated <sip:a@b>',
    '<sip:a@b>;tag=',
    ';;;',
    '<sip:a@b>;tag=x;tag=y',
    '<tel:+1>',
    '<mailto:a@b>',
    '<sip:a@127.0.0.1:0>',
    '<sip:a@256.256.256.256>',
    'sip:a@b, <sip:c@d>',
    '<sip:a@b;transport=sctp>',
    '<sips:a@b>',
    '"\\"" <sip:a@b>',
    '<sip:%zz@b>',
  ),
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[\r\n]/g, ' ')),
);

function invite(port: number, engPort: number, n: number, over: Record<string, string>): string {
  const h: Record<string, string> = {
    Via: `SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKfz${n}`,
    'Max-Forwards': '70',
    From: `<sip:pbx@127.0.0.1>;tag=f${n}`,
    To: `<sip:+4930@127.0.0.1:${engPort}>`,
    'Call-ID': `fuzz-${n}@test`,
    CSeq: '1 INVITE',
    Contact: `<sip:pbx@127.0.0.1:${port}>`,
    'Record-Route': `<sip:127.0.0.1:${port};lr>`,
    ...over,
  };
  const lines = Object.entries(h).map(([k, v]) => `${k}: ${v}`);
  return (
    [
      `INVITE sip:+4930@127.0.0.1:${engPort} SIP/2.0`,
      ...lines,
      'Content-Type: application/sdp',
      `Content-Length: ${SDP.length}`,
      '',
      '',
    ].join('\r\n') + SDP.toString()
  );
}

describe('embedded engine under hostile INVITEs', () => {
  it('keeps serving: no throw, no unhandled rejection, a normal call afterwards', { timeout: 60_000 }, async () => {
    const b = engine();
    await b.start();
    let invites = 0;
    b.onInvite((call) => {
      invites++;
      call.sendProvisional(180);
      call.answer({ body: SDP, contentType: 'application/sdp' }).then(
        async (d) => {
          await d.request('INVITE', { body: SDP, contentType: 'application/sdp' }).catch(() => undefined);
          await d.bye();
        },
        () => undefined,
      );
    });
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = sock.address().port;
    sock.on('message', () => undefined); // responses and requests from the engine are just drained
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('From', 'To', 'Contact', 'Record-Route', 'Via', 'CSeq', 'Max-Forwards', 'Call-ID'),
        oddValue,
        async (header, value) => {
          n++;
          sock.send(invite(port, b.localPort, n, { [header]: value }), b.localPort, '127.0.0.1');
          await new Promise((r) => setTimeout(r, 2));
        },
      ),
      { numRuns: 400 },
    );
    await new Promise((r) => setTimeout(r, 1500)); // let answers, re-INVITEs, BYEs and their timeouts play out
    sock.close();
    expect(invites).toBeGreaterThan(0);

    const a = engine();
    await a.start();
    const dialog = await a.invite({
      uri: `sip:ok@127.0.0.1:${b.localPort}`,
      from: { uri: 'sip:a@127.0.0.1' },
      body: SDP,
      contentType: 'application/sdp',
    }).result;
    expect(dialog.remoteBody.toString()).toBe(SDP.toString());
  });
});
