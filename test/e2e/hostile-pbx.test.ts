/**
 * The real daemon fed odd INVITEs by a misbehaving PBX (header values replaced by strange but parseable text), with
 * a minimal Telnyx stand-in that answers every INVITE 486. The daemon must keep serving, answer every INVITE it
 * accepted, and end every Kallglot session it created: created === ended, nothing active afterwards.
 */
import dgram from 'node:dgram';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
const sockets: dgram.Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close();
  await env?.teardown();
  env = undefined;
});

async function udp(port = 0): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4');
  await new Promise<void>((r) => s.bind(port, '127.0.0.1', () => r()));
  sockets.push(s);
  return s;
}

/** Answers INVITEs 486 (copying Via/From/To/Call-ID/CSeq, adding a To tag) and ignores everything else. */
function busyResponder(sock: dgram.Socket): void {
  sock.on('message', (msg, rinfo) => {
    const text = msg.toString('utf8');
    if (!text.startsWith('INVITE ')) return;
    const head = text.split('\r\n\r\n')[0]!.split('\r\n');
    const pick = (n: string) => head.filter((l) => l.toLowerCase().startsWith(`${n.toLowerCase()}:`));
    const to = pick('To')[0] ?? 'To: <sip:x@x>';
    const res = [
      'SIP/2.0 486 Busy Here',
      ...pick('Via'),
      ...pick('From'),
      `${to};tag=busy`,
      ...pick('Call-ID'),
      ...pick('CSeq'),
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    sock.send(res, rinfo.port, rinfo.address);
  });
}

const odd = fc.oneof(
  fc.constantFrom(
    '*',
    '<>',
    '<sip:>',
    '"x" <sip:@127.0.0.1>',
    '<sip:a@[::1]>',
    '<tel:+15550100>',
    '<sip:%41%42@127.0.0.1>',
    '"\\"quoted\\"" <sip:+1555@127.0.0.1>',
    '<sip:a@b>;tag=',
    '<sips:secure@127.0.0.1>',
    '<sip:a@127.0.0.1;transport=tcp>',
    '<sip:a@127.0.0.1>, <sip:b@127.0.0.1>',
    '<sip:+4930;phone-context=x@127.0.0.1>',
  ),
  fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, ' ')),
);

describe('hostile PBX', () => {
  it('answers every accepted INVITE and leaks no session', { timeout: 90_000 }, async () => {
    const telnyxPort = await freePort('udp');
    const telnyx = await udp(telnyxPort);
    busyResponder(telnyx);
    const e = (env = await startE2e({ TELNYX_OUTBOUND_PROXY: `127.0.0.1:${telnyxPort}`, MAX_CALLS_PER_SECOND: '0' }));
    const pbx = await udp();
    const pbxPort = pbx.address().port;
    const finals = new Set<string>();
    pbx.on('message', (m) => {
      const text = m.toString('utf8');
      const status = /^SIP\/2\.0 (\d{3})/.exec(text)?.[1];
      const callId = /^Call-ID:\s*(.+)$/im.exec(text)?.[1]?.trim();
      if (status && Number(status) >= 200 && callId) finals.add(callId);
      // ACK our own final responses' transactions is the PBX's job; without it the daemon retransmits, which is fine.
    });
    const sent: string[] = [];
    let n = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('From', 'To', 'Contact', 'Record-Route', 'P-Asserted-Identity', 'X-Kallglot-Languages'),
        odd,
        async (header, value) => {
          n++;
          const callId = `hostile-${n}@pbx`;
          const h: Record<string, string> = {
            Via: `SIP/2.0/UDP 127.0.0.1:${pbxPort};branch=z9hG4bKhostile${n}`,
            'Max-Forwards': '70',
            From: `<sip:+4989555@127.0.0.1>;tag=h${n}`,
            To: '<sip:+4930123456@127.0.0.1>',
            'Call-ID': callId,
            CSeq: '1 INVITE',
            Contact: `<sip:pbx@127.0.0.1:${pbxPort}>`,
          };
          h[header] = header === 'From' || header === 'To' ? `${value};tag=h${n}`.replace(/^;/, '') : value;
          const text = [
            `INVITE sip:+4930123456@127.0.0.1:${e.gw.sipPort} SIP/2.0`,
            ...Object.entries(h).map(([k, v]) => `${k}: ${v}`),
            'Content-Length: 0',
            '',
            '',
          ].join('\r\n');
          sent.push(callId);
          pbx.send(text, e.gw.sipPort, '127.0.0.1');
          await new Promise((r) => setTimeout(r, 5));
        },
      ),
      { numRuns: 120 },
    );

    // Every INVITE the daemon took on as a call got a final answer (malformed ones a 400, the rest 486 relayed or 4xx).
    const accepted = () => new Set(e.gw.logs.filter((l) => l.msg === 'new call').map((l) => String(l.callId)));
    await waitFor(
      () => [...accepted()].every((id) => finals.has(id)) || undefined,
      20_000,
      () => `unanswered: ${[...accepted()].filter((id) => !finals.has(id)).join(', ')}`,
    );
    expect(accepted().size).toBeGreaterThan(0);
    // Every session created was ended exactly once.
    await waitFor(
      () => e.sandbox.stats().ended === e.sandbox.stats().created || undefined,
      20_000,
      () => JSON.stringify(e.sandbox.stats()),
    );
    expect(e.sandbox.sessions().every((s) => s.endCalls === 1)).toBe(true);
    const health = (await (await fetch(`http://127.0.0.1:${e.gw.httpPort}/healthz`)).json()) as { activeCalls: number };
    expect(health.activeCalls).toBe(0);
  });
});
