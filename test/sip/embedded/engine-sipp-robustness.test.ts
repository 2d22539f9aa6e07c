/**
 * The embedded engine, in-process, against real SIPp: UDP retransmissions in both directions (default timers, as
 * the timer values are what is tested), digest authentication, and malformed input that must not hurt it.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import { SipError, type Dialog, type DialogEnd } from '../../../src/sip/port.ts';
import {
  received,
  screenRow,
  sippLog,
  SDP_ANSWER,
  SDP_OFFER,
  show,
  sippUacTo,
  sippUas,
  startEngine,
  TRANSPORTS,
  waitFor,
  within,
} from './engine-sipp-fixture.ts';

/** Dial a SIPp UAS; on failure the SIPp log is part of the error. */
async function dial(
  engine: EmbeddedEngine,
  uas: Awaited<ReturnType<typeof sippUas>>,
  opts: {
    transport: 'udp' | 'tcp';
    auth?: { username: string; password: string };
  },
): Promise<Dialog> {
  const out = engine.invite({
    uri: `sip:test@127.0.0.1:${uas.port}`,
    from: { uri: 'sip:me@127.0.0.1' },
    body: SDP_OFFER,
    ...opts,
  });
  try {
    return await within(out.result, 10_000, 'the dialog');
  } catch (err) {
    await uas.run.stop();
    throw new Error(`${String(err)}\n${show(await uas.run.done)}`);
  }
}

describe('retransmissions (default T1 = 500 ms)', () => {
  it('retransmits the INVITE to a slow UAS (timer A) and ends up with exactly one dialog', async () => {
    const engine = await startEngine();
    const uas = await sippUas({ scenario: 'uas-slow-200-expect-retransmissions.xml', transport: 'udp', calls: 1 });
    const dialog = await dial(engine, uas, { transport: 'udp' });
    expect(engine.stats().activeDialogs).toBe(1);
    await dialog.bye();
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(0);
    const invites = received(r, /^INVITE /);
    // Sent at 0, 500 and 1500 ms; the 200 goes out at 1800 ms.
    expect(invites.length, show(r)).toBeGreaterThanOrEqual(2);
    expect(new Set(invites.map((m) => m.branch)).size, show(r)).toBe(1);
    expect(new Set(invites.map((m) => m.text)).size, show(r)).toBe(1); // byte-identical copies
    // SIPp itself counts them as retransmissions of the INVITE, not as new calls or unexpected messages.
    expect(screenRow(r, '-+> INVITE'), show(r)).toEqual({ messages: 1, retrans: invites.length - 1 });
    expect(received(r, /^ACK /), show(r)).toHaveLength(1);
    expect(received(r, /^BYE /), show(r)).toHaveLength(1);
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('does not retransmit the INVITE over TCP (timer A is for unreliable transports)', async () => {
    const engine = await startEngine();
    const uas = await sippUas({ scenario: 'uas-slow-200-expect-retransmissions.xml', transport: 'tcp', calls: 1 });
    const dialog = await dial(engine, uas, { transport: 'tcp' });
    await dialog.bye();
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(0);
    expect(received(r, /^INVITE /), show(r)).toHaveLength(1);
  });

  it('retransmits its 200 until a slow caller ACKs, then confirms the dialog', async () => {
    const engine = await startEngine();
    let answeredAt = 0;
    let confirmedAt = 0;
    const ends: DialogEnd[] = [];
    engine.onInvite((call) => {
      answeredAt = Date.now();
      void call.answer({ body: SDP_ANSWER }).then((dialog) => {
        confirmedAt = Date.now();
        dialog.onEnd((end) => ends.push(end));
      });
    });
    const uac = await sippUacTo(engine, {
      scenario: 'uac-invite-delay-ack-expect-200-retransmission.xml',
      transport: 'udp',
      calls: 1,
    });
    const r = await uac.done;
    expect(r.exitCode, show(r)).toBe(0);
    // SIPp takes the identical copies as retransmissions of the 200 (no "unexpected message"), but logs each one.
    const oks = received(r, /^SIP\/2\.0 200/, /INVITE/);
    expect(oks.length, show(r)).toBeGreaterThanOrEqual(2);
    expect(new Set(oks.map((m) => m.text)).size, show(r)).toBe(1);
    expect(screenRow(r, '200 <-+'), show(r)).toEqual({ messages: 1, retrans: oks.length - 1 });
    expect(
      sippLog(r).filter((m) => m.direction === 'sent' && m.startLine.startsWith('ACK ')),
      show(r),
    ).toHaveLength(1);
    await waitFor(() => ends.length === 1, 'the dialog to end by the caller BYE');
    // answer() resolved only once the ACK came, after SIPp's 1.2 s pause.
    expect(confirmedAt - answeredAt).toBeGreaterThanOrEqual(1000);
    expect(ends[0]!.by).toBe('remote');
    expect(engine.stats().activeDialogs).toBe(0);
  });
});

describe.each(TRANSPORTS)('401 digest challenge (qop=auth) over %s', (transport) => {
  it('answers the challenge with the credentials and gets the call', async () => {
    const engine = await startEngine({ T1: 100 });
    const uas = await sippUas({ scenario: 'uas-401-auth-then-200.xml', transport, calls: 1 });
    const dialog = await dial(engine, uas, { transport, auth: { username: 'alice', password: 'secret' } });
    expect(dialog.remoteBody.toString()).toContain('o=sipp-uas');
    await dialog.bye();
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(0);
    const invites = received(r, /^INVITE /);
    const authed = invites.find((m) => m.header('Authorization'));
    expect(authed?.header('Authorization'), show(r)).toMatch(/^Digest .*username="alice"/);
    expect(authed?.header('Authorization'), show(r)).toMatch(/qop=auth/);
    expect(authed?.header('Authorization'), show(r)).toMatch(/nc=00000001/);
    // A new request: same Call-ID, higher CSeq (RFC 3261 §22.2).
    expect(authed?.header('Call-ID')).toBe(invites[0]!.header('Call-ID'));
    expect(authed?.header('CSeq')).toBe('2 INVITE');
  });

  it('fails with the SipError the server sends for a wrong password', async () => {
    const engine = await startEngine({ T1: 100 });
    const uas = await sippUas({ scenario: 'uas-401-auth-then-200.xml', transport, calls: 1 });
    const out = engine.invite({
      uri: `sip:test@127.0.0.1:${uas.port}`,
      from: { uri: 'sip:me@127.0.0.1' },
      body: SDP_OFFER,
      transport,
      auth: { username: 'alice', password: 'wrong' },
    });
    const err = await within(
      out.result.then(
        () => undefined,
        (e: unknown) => e,
      ),
      10_000,
      'the call result',
    );
    expect(err).toBeInstanceOf(SipError);
    expect((err as SipError).status).toBe(403);
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(1); // the scenario fails a call with a bad credential on purpose
    expect(received(r, /^ACK /).length, show(r)).toBe(2); // both the 401 and the 403 were ACKed
    expect(engine.stats().activeDialogs).toBe(0);
  });
});

describe('malformed input', () => {
  const sockets: Array<dgram.Socket | net.Socket> = [];
  afterEach(() => {
    for (const s of sockets.splice(0)) {
      if (s instanceof net.Socket) s.destroy();
      else s.close();
    }
  });

  function request(port: number, lines: { omit?: string; contentLength?: string; body?: string }): Buffer {
    const body = lines.body ?? '';
    const headers = [
      `OPTIONS sip:gw@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-bad-${Math.random().toString(36).slice(2)};rport`,
      'Max-Forwards: 70',
      'From: <sip:fuzz@127.0.0.1>;tag=f1',
      'To: <sip:gw@127.0.0.1>',
      `Call-ID: bad-${Math.random().toString(36).slice(2)}@127.0.0.1`,
      'CSeq: 1 OPTIONS',
      `Content-Length: ${lines.contentLength ?? Buffer.byteLength(body)}`,
    ].filter((h) => !lines.omit || !h.startsWith(`${lines.omit}:`));
    return Buffer.from(`${headers.join('\r\n')}\r\n\r\n${body}`);
  }

  it('survives garbage, bad framing and an oversized TCP message, answers 400 where it can, then takes a call', async () => {
    const engine = await startEngine({ T1: 100 });
    const port = engine.localPort;
    const udp = dgram.createSocket('udp4');
    sockets.push(udp);
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const replies: string[] = [];
    udp.on('message', (m) => replies.push(m.toString('latin1')));
    const send = (data: Buffer): Promise<void> =>
      new Promise((resolve, reject) => {
        udp.send(data, port, '127.0.0.1', (err) => (err ? reject(err) : resolve()));
      });
    const before = engine.stats().parseErrors;

    await send(Buffer.from([0x00, 0xff, 0x13, 0x37, 0x0d, 0x0a, 0x42, 0x41, 0x44]));
    await send(Buffer.from('\u00e9\u00e9 not SIP at all\r\n\r\n', 'latin1'));
    await send(request(port, { contentLength: '500', body: 'short' })); // Content-Length larger than the datagram
    await send(request(port, { contentLength: 'ten' }));
    await send(request(port, { omit: 'Call-ID' }));
    await waitFor(() => replies.filter((r) => r.startsWith('SIP/2.0 400')).length >= 2, 'two 400 responses');

    // >64 KiB over TCP: refused by the framer, the connection is closed.
    const tcp = net.connect({ host: '127.0.0.1', port });
    sockets.push(tcp);
    await new Promise<void>((resolve, reject) => tcp.once('connect', () => resolve()).once('error', reject));
    const closed = new Promise<void>((resolve) => tcp.once('close', () => resolve()));
    tcp.on('error', () => undefined); // the engine may reset the connection mid-write
    const big = 'x'.repeat(70 * 1024);
    tcp.write(request(port, { body: big }).toString('latin1').replace('SIP/2.0/UDP', 'SIP/2.0/TCP'), 'latin1');
    await within(closed, 5000, 'the engine to close the TCP connection');
    // By now every datagram has been handled: the two requests with a Via to answer got 400, nothing else did.
    expect(replies).toHaveLength(2);

    expect(engine.stats().parseErrors - before).toBeGreaterThanOrEqual(5);
    const badRequests = replies.filter((r) => r.startsWith('SIP/2.0 400'));
    expect(badRequests.some((r) => /Content-Length/i.test(r.split('\r\n', 1)[0]!))).toBe(true);
    expect(replies.every((r) => r.startsWith('SIP/2.0 400'))).toBe(true);

    // Still healthy: a normal call over each transport.
    engine.onInvite((call) => void call.answer({ body: SDP_ANSWER }));
    for (const transport of TRANSPORTS) {
      const uac = await sippUacTo(engine, { scenario: 'uac-invite-200-then-bye.xml', transport, calls: 1 });
      const r = await uac.done;
      expect(r.exitCode, show(r)).toBe(0);
    }
    expect(engine.stats().activeDialogs).toBe(0);
  });
});
