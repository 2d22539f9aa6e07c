/**
 * Embedded engines talking over IPv6 loopback, both ends ours: a dual-stack engine on `::` (with one public address
 * per family) calling and called by an IPv6-only engine on `::1` and an IPv4 one on 127.0.0.1. What goes on the
 * wire: bracketed IPv6 in Via sent-by and Contact toward IPv6 peers, IPv4 toward IPv4 peers (RFC 3261 §25.1,
 * RFC 5118); next hops from `sip:...@[v6]:port` URIs and from a bracketed outbound proxy.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEngine, type EmbeddedEngineOptions } from '../../../src/sip/embedded/engine.ts';
import type { Dialog, DialogEnd, HeaderList, InboundCall } from '../../../src/sip/port.ts';

const SDP = Buffer.from('v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n');
const engines: EmbeddedEngine[] = [];

afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

async function engine(host: string, publicAddress: string, publicAddress6?: string): Promise<EmbeddedEngine> {
  const opts: EmbeddedEngineOptions = {
    host,
    port: 0,
    transports: ['udp', 'tcp'],
    publicAddress,
    publicAddress6,
    userAgent: 'test',
    logger: pino({ level: 'silent' }),
  };
  const e = new EmbeddedEngine(opts);
  engines.push(e);
  await e.start();
  return e;
}

function header(headers: HeaderList | undefined, name: string): string | undefined {
  return headers?.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

/** The next INVITE `e` receives, answered 200 with SDP; resolves with the call and its dialog. */
function answerNext(e: EmbeddedEngine): Promise<{ call: InboundCall; dialog: Dialog }> {
  return new Promise((resolve, reject) =>
    e.onInvite((call) => {
      call.answer({ body: SDP, contentType: 'application/sdp' }).then((dialog) => resolve({ call, dialog }), reject);
    }),
  );
}

function ended(d: Dialog): Promise<DialogEnd> {
  return new Promise((resolve) => d.onEnd(resolve));
}

const invite = (e: EmbeddedEngine, uri: string, extra: { proxy?: string; transport?: 'udp' | 'tcp' } = {}) =>
  e.invite({ uri, from: { uri: 'sip:gw@example.com' }, body: SDP, contentType: 'application/sdp', ...extra }).result;

describe('embedded engine over IPv6', () => {
  it.each(['udp', 'tcp'] as const)(
    'dual-stack engine calls an IPv6 peer at sip:...@[::1]:port over %s with bracketed Via and Contact',
    async (transport) => {
      const gw = await engine('::', '127.0.0.1', '::1');
      const peer = await engine('::1', '::1');
      const answered = answerNext(peer);
      const out = await invite(gw, `sip:+4930@[::1]:${peer.localPort}`, { transport });
      const { call, dialog } = await answered;

      const tp = transport.toUpperCase();
      expect(call.source).toMatchObject({ transport, address: '::1' });
      expect(call.header('Via')).toMatch(new RegExp(`^SIP/2\\.0/${tp} \\[::1\\]:${gw.localPort};branch=z9hG4bK`));
      const tpParam = transport === 'tcp' ? ';transport=tcp' : '';
      expect(call.header('Contact')).toBe(`<sip:gw@[::1]:${gw.localPort}${tpParam}>`);
      expect(header(out.remoteHeaders, 'Contact')).toBe(`<sip:gw@[::1]:${peer.localPort}${tpParam}>`);

      // In-dialog requests both ways follow the bracketed Contacts.
      const info = new Promise<string>((resolve) =>
        dialog.onRequest((r) => {
          resolve(r.method);
          r.respond(200);
        }),
      );
      expect((await out.request('INFO', { body: Buffer.from('x'), contentType: 'text/plain' })).status).toBe(200);
      expect(await info).toBe('INFO');
      const gone = ended(out);
      await dialog.bye();
      expect(await gone).toMatchObject({ by: 'remote' });
    },
  );

  it('reaches an IPv6 outbound proxy given as [::1]:port', async () => {
    const gw = await engine('::', '127.0.0.1', '::1');
    const proxy = await engine('::1', '::1');
    const answered = answerNext(proxy);
    const out = await invite(gw, 'sip:sess_1@sip.telnyx.com', { proxy: `[::1]:${proxy.localPort}` });
    const { call } = await answered;
    expect(call.requestUri).toBe('sip:sess_1@sip.telnyx.com');
    expect(call.header('Via')).toContain(`[::1]:${gw.localPort}`);
    const gone = ended((await answered).dialog);
    await out.bye();
    expect(await gone).toMatchObject({ by: 'remote' });
  });

  it('writes its IPv4 address toward an IPv4 caller on the same dual-stack port', async () => {
    const gw = await engine('::', '127.0.0.1', '::1');
    const pbx = await engine('127.0.0.1', '127.0.0.1');
    const answered = answerNext(gw);
    const out = await invite(pbx, `sip:+4930@127.0.0.1:${gw.localPort}`);
    const { call, dialog } = await answered;
    // The IPv4 caller reached the udp6 socket IPv4-mapped; the engine sees it as IPv4.
    expect(call.source).toMatchObject({ transport: 'udp', address: '127.0.0.1' });
    expect(header(out.remoteHeaders, 'Contact')).toBe(`<sip:gw@127.0.0.1:${gw.localPort}>`);
    // The BYE from the dual-stack side goes to an IPv4 peer through the IPv6 socket.
    const gone = ended(out);
    await dialog.bye();
    expect(await gone).toMatchObject({ by: 'remote' });
  });

  it('answers an IPv6 caller with received/rport and a bracketed Contact', async () => {
    const gw = await engine('::', '127.0.0.1', '::1');
    const pbx = await engine('::1', '::1');
    const answered = answerNext(gw);
    const out = await invite(pbx, `sip:+4930@[::1]:${gw.localPort}`);
    const { call } = await answered;
    expect(call.source).toMatchObject({ transport: 'udp', address: '::1', port: pbx.localPort });
    expect(call.header('Via')).toMatch(/;received=::1/);
    expect(call.header('Via')).toContain(`;rport=${pbx.localPort}`);
    expect(header(out.remoteHeaders, 'Contact')).toBe(`<sip:gw@[::1]:${gw.localPort}>`);
    await out.bye();
  });
});
