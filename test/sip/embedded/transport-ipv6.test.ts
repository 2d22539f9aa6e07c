/**
 * The transport over IPv6: `::` is dual-stack (IPv4 and IPv6 peers on one UDP socket and one TCP server), `::1` is
 * IPv6 only, and `::` falls back to 0.0.0.0 on a machine without IPv6 (simulated: this one has IPv6).
 */
import dgram from 'node:dgram';
import net from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../src/logger.ts';
import { familyOf, ipv6Unavailable, isUnspecifiedIPv6, udpSendAddress } from '../../../src/sip/embedded/listen.ts';
import type { SipEndpoint, SipMessage } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction.ts';
import { responseDestination, TransportLayer } from '../../../src/sip/embedded/transport.ts';
import { parseVia } from '../../../src/sip/embedded/via.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

type Inbox = Array<{ msg: SipMessage; source: SipEndpoint }>;

async function startLayer(
  host: string,
  opts: { logs?: string[] } = {},
): Promise<{ layer: TransportLayer; inbox: Inbox }> {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      opts.logs?.push(chunk.toString('utf8'));
      done();
    },
  });
  const layer = new TransportLayer({ host, port: 0, transports: ['udp', 'tcp'], logger: createLogger('warn', sink) });
  await layer.start();
  cleanups.push(() => layer.stop());
  const inbox: Inbox = [];
  layer.onMessage((msg, source) => inbox.push({ msg, source }));
  return { layer, inbox };
}

function request(branch: string, sentBy: string, transport = 'UDP'): string {
  return [
    'OPTIONS sip:gw@example.net SIP/2.0',
    `Via: SIP/2.0/${transport} ${sentBy};branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:pbx@example.com>;tag=f1',
    'To: <sip:gw@example.net>',
    `Call-ID: ${branch}@example.com`,
    'CSeq: 1 OPTIONS',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function udpPeer(address: string): Promise<{ sock: dgram.Socket; got: string[] }> {
  const sock = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString('utf8')));
  await new Promise<void>((r) => sock.bind(0, address, () => r()));
  cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
  return { sock, got };
}

async function tcpPeer(address: string, port: number): Promise<{ sock: net.Socket; got: () => string }> {
  const sock = net.connect({ host: address, port });
  await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
  cleanups.push(() => void sock.destroy());
  let data = '';
  sock.on('data', (d) => {
    data += d.toString('utf8');
  });
  return { sock, got: () => data };
}

/** Answer the n-th received request the way the transaction layer does: to its response destination. */
function answer(layer: TransportLayer, inbox: Inbox, n: number): void {
  const { msg, source } = inbox[n]!;
  if (msg.kind !== 'request') throw new Error('expected a request');
  layer.send(buildResponse(msg, 200, 'OK'), responseDestination(parseVia(msg.headers.getAll('Via')[0]!), source));
}

describe('dual-stack transport on ::', () => {
  it('takes UDP from IPv4 and IPv6 peers on one port, stamps received/rport, and answers both', async () => {
    const { layer, inbox } = await startLayer('::');
    expect(layer.localAddress).toBe('::');
    expect(layer.family).toBe(0);
    const v4 = await udpPeer('127.0.0.1');
    const v6 = await udpPeer('::1');
    v4.sock.send(request('z9hG4bKv4', '192.0.2.9:5060'), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'IPv4 datagram');
    v6.sock.send(request('z9hG4bKv6', '[2001:db8::9]:5060'), layer.localPort, '::1');
    await waitFor(() => inbox.length === 2, 'IPv6 datagram');

    // The IPv4 peer arrives IPv4-mapped on the udp6 socket; the transport reports it as plain IPv4.
    expect(inbox[0]!.source).toEqual({ transport: 'udp', address: '127.0.0.1', port: v4.sock.address().port });
    expect(inbox[1]!.source).toEqual({ transport: 'udp', address: '::1', port: v6.sock.address().port });
    const via6 = parseVia(inbox[1]!.msg.headers.getAll('Via')[0]!);
    expect(via6.host).toBe('[2001:db8::9]');
    // RFC 3261 received takes an IPv6address, unbracketed.
    expect(via6.params).toMatchObject({ received: '::1', rport: String(v6.sock.address().port) });
    expect(responseDestination(via6, inbox[1]!.source)).toEqual(inbox[1]!.source);

    answer(layer, inbox, 0);
    answer(layer, inbox, 1);
    await waitFor(() => v4.got.length === 1 && v6.got.length === 1, 'both responses');
    expect(v4.got[0]).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(v6.got[0]).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(layer.counters.dropped).toBe(0);
  });

  it('accepts TCP from IPv4 and IPv6 peers and answers each on its own connection', async () => {
    const { layer, inbox } = await startLayer('::');
    const v4 = await tcpPeer('127.0.0.1', layer.localPort);
    const v6 = await tcpPeer('::1', layer.localPort);
    v4.sock.write(request('z9hG4bKt4', '127.0.0.1:5999', 'TCP'));
    await waitFor(() => inbox.length === 1, 'IPv4 TCP request');
    v6.sock.write(request('z9hG4bKt6', '[::1]:5999', 'TCP'));
    await waitFor(() => inbox.length === 2, 'IPv6 TCP request');
    expect(inbox[0]!.source).toEqual({ transport: 'tcp', address: '127.0.0.1', port: v4.sock.localPort });
    expect(inbox[1]!.source).toEqual({ transport: 'tcp', address: '::1', port: v6.sock.localPort });
    answer(layer, inbox, 0);
    answer(layer, inbox, 1);
    await waitFor(() => v4.got().length > 0 && v6.got().length > 0, 'TCP responses');
    expect(v4.got()).toContain('z9hG4bKt4');
    expect(v6.got()).toContain('z9hG4bKt6');
  });

  it('sends UDP to a bracketed IPv6 destination and to an IPv4-mapped one', async () => {
    const { layer, inbox } = await startLayer('::');
    const v4 = await udpPeer('127.0.0.1');
    const v6 = await udpPeer('::1');
    v4.sock.send(request('z9hG4bKm', '127.0.0.1:5060'), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'request');
    const req = inbox[0]!.msg;
    if (req.kind !== 'request') throw new Error('expected a request');
    const res = buildResponse(req, 200, 'OK');
    layer.send(res, { transport: 'udp', address: '[::1]', port: v6.sock.address().port });
    layer.send(res, { transport: 'udp', address: '::ffff:127.0.0.1', port: v4.sock.address().port });
    await waitFor(() => v4.got.length === 1 && v6.got.length === 1, 'both datagrams');
  });
});

describe('IPv6-only transport on ::1', () => {
  it('serves IPv6 peers and reports a UDP send to an IPv4 address as a send error', async () => {
    const { layer, inbox } = await startLayer('::1');
    expect(layer.localAddress).toBe('::1');
    expect(layer.family).toBe(6);
    const v6 = await udpPeer('::1');
    v6.sock.send(request('z9hG4bKonly6', '[::1]:5060'), layer.localPort, '::1');
    await waitFor(() => inbox.length === 1, 'IPv6 datagram');
    answer(layer, inbox, 0);
    await waitFor(() => v6.got.length === 1, 'response');

    const errors: Array<{ err: Error; dest: SipEndpoint }> = [];
    layer.onSendError((err, _msg, dest) => errors.push({ err, dest }));
    const v4 = await udpPeer('127.0.0.1');
    layer.send(inbox[0]!.msg, { transport: 'udp', address: '127.0.0.1', port: v4.sock.address().port });
    await waitFor(() => errors.length === 1, 'send error');
    expect(errors[0]!.dest.address).toBe('127.0.0.1');
    expect(v4.got).toHaveLength(0);
  });

  it('opens an outbound TCP connection to an IPv6 peer', async () => {
    const { layer } = await startLayer('::1');
    let received = '';
    const accepted: net.Socket[] = [];
    const server = net.createServer((s) => {
      accepted.push(s);
      s.on('data', (d) => (received += d.toString('utf8')));
    });
    await new Promise<void>((r) => server.listen(0, '::1', () => r()));
    cleanups.push(() => {
      for (const s of accepted) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    });
    const port = (server.address() as net.AddressInfo).port;
    const parsed = parseMessage(Buffer.from(request('z9hG4bKout6', `[::1]:${layer.localPort}`, 'TCP')));
    if (!parsed.ok) throw new Error(parsed.error);
    layer.send(parsed.message, { transport: 'tcp', address: '[::1]', port });
    await waitFor(() => received.includes('z9hG4bKout6'), 'request over TCP');
  });
});

describe('no IPv6 on the machine', () => {
  /** Make every udp6 bind fail the way a kernel without IPv6 does. */
  function failUdp6(code: string): void {
    const real = dgram.createSocket;
    vi.spyOn(dgram, 'createSocket').mockImplementation(((opts: dgram.SocketType | dgram.SocketOptions) => {
      const socket = real(opts as dgram.SocketOptions);
      const type = typeof opts === 'string' ? opts : opts.type;
      if (type === 'udp6') {
        socket.bind = (() => {
          queueMicrotask(() => socket.emit('error', Object.assign(new Error(`bind ${code}`), { code })));
          return socket;
        }) as typeof socket.bind;
      }
      return socket;
    }) as typeof dgram.createSocket);
  }

  it(':: falls back to 0.0.0.0 with a warning when IPv6 is unavailable (EAFNOSUPPORT)', async () => {
    failUdp6('EAFNOSUPPORT');
    const logs: string[] = [];
    const { layer, inbox } = await startLayer('::', { logs });
    expect(layer.localAddress).toBe('0.0.0.0');
    expect(layer.family).toBe(4);
    const warning = logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.fallback === '0.0.0.0');
    expect(warning).toMatchObject({ level: 'warn', code: 'EAFNOSUPPORT', host: '::' });
    expect(String(warning?.msg)).toContain('IPv6 is not available');
    const v4 = await udpPeer('127.0.0.1');
    v4.sock.send(request('z9hG4bKfb', '127.0.0.1:5060'), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'IPv4 datagram after the fallback');
    answer(layer, inbox, 0);
    await waitFor(() => v4.got.length === 1, 'response after the fallback');
  });

  it('an explicit IPv6 address does not fall back: the bind error stands', async () => {
    failUdp6('EADDRNOTAVAIL');
    const layer = new TransportLayer({ host: '::1', port: 0, transports: ['udp', 'tcp'] });
    await expect(layer.start()).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
  });
});

describe('listen helpers', () => {
  it('recognises the unspecified IPv6 address in any spelling', () => {
    for (const h of ['::', '[::]', '0:0:0:0:0:0:0:0', '::0']) expect(isUnspecifiedIPv6(h), h).toBe(true);
    for (const h of ['::1', '0.0.0.0', '2001:db8::', 'localhost']) expect(isUnspecifiedIPv6(h), h).toBe(false);
  });

  it('says which families a bound address reaches', () => {
    expect(familyOf('::')).toBe(0);
    expect(familyOf('::1')).toBe(6);
    expect(familyOf('2001:db8::5')).toBe(6);
    expect(familyOf('0.0.0.0')).toBe(4);
    expect(familyOf('192.0.2.7')).toBe(4);
  });

  it('falls back only for "no IPv6 here" errors on ::', () => {
    const err = (code: string) => Object.assign(new Error(code), { code });
    expect(ipv6Unavailable('::', err('EAFNOSUPPORT'))).toBe(true);
    expect(ipv6Unavailable('::', err('EADDRNOTAVAIL'))).toBe(true);
    expect(ipv6Unavailable('::', err('EADDRINUSE'))).toBe(false);
    expect(ipv6Unavailable('::1', err('EAFNOSUPPORT'))).toBe(false);
    expect(ipv6Unavailable('0.0.0.0', err('EAFNOSUPPORT'))).toBe(false);
  });

  it('writes a UDP destination in the form the socket family takes', () => {
    expect(udpSendAddress('192.0.2.1', 6)).toBe('::ffff:192.0.2.1');
    expect(udpSendAddress('[2001:db8::1]', 6)).toBe('2001:db8::1');
    expect(udpSendAddress('::ffff:192.0.2.1', 4)).toBe('192.0.2.1');
    expect(udpSendAddress('192.0.2.1', 4)).toBe('192.0.2.1');
  });
});
