import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createRequest, SipHeaders } from '../../../src/sip/embedded/message.ts';
import type { SipEndpoint, SipMessage, SipRequest } from '../../../src/sip/embedded/message.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction.ts';
import { responseDestination, TransportLayer } from '../../../src/sip/embedded/transport.ts';
import { parseVia } from '../../../src/sip/embedded/via.ts';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function startLayer(): Promise<{
  layer: TransportLayer;
  inbox: Array<{ msg: SipMessage; source: SipEndpoint }>;
}> {
  const layer = new TransportLayer({ host: '127.0.0.1', port: 0, transports: ['udp', 'tcp'] });
  await layer.start();
  cleanups.push(() => layer.stop());
  const inbox: Array<{ msg: SipMessage; source: SipEndpoint }> = [];
  layer.onMessage((msg, source) => inbox.push({ msg, source }));
  return { layer, inbox };
}

function rawRequest(opts: {
  method?: string;
  branch: string;
  via?: string;
  body?: string;
  extra?: string;
  version?: string;
}): string {
  const body = opts.body ?? '';
  const method = opts.method ?? 'OPTIONS';
  return [
    `${method} sip:gw@127.0.0.1 ${opts.version ?? 'SIP/2.0'}`,
    `Via: ${opts.via ?? `SIP/2.0/UDP 10.9.8.7:5070;branch=${opts.branch};rport`}`,
    'Max-Forwards: 70',
    'From: <sip:alice@example.com>;tag=f1',
    'To: <sip:gw@example.net>',
    `Call-ID: ${opts.branch}@example.com`,
    `CSeq: 1 ${method}`,
    ...(opts.extra ? [opts.extra] : []),
    `Content-Length: ${Buffer.byteLength(body)}`,
    '',
    body,
  ].join('\r\n');
}

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function udpClient(): Promise<dgram.Socket> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  cleanups.push(() => new Promise<void>((r) => sock.close(() => r())));
  return sock;
}

async function tcpClient(port: number): Promise<{ sock: net.Socket; received: () => string }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
  cleanups.push(() => void sock.destroy());
  let data = '';
  sock.on('data', (d) => {
    data += d.toString('utf8');
  });
  return { sock, received: () => data };
}

describe('TransportLayer', () => {
  it('binds UDP and TCP on the same port when given port 0', async () => {
    const { layer } = await startLayer();
    expect(layer.localPort).toBeGreaterThan(0);
    expect(layer.localAddress).toBe('127.0.0.1');
    const { sock } = await tcpClient(layer.localPort);
    expect(sock.remotePort).toBe(layer.localPort);
  });

  it('delivers a UDP request and stamps received/rport on its top Via', async () => {
    const { layer, inbox } = await startLayer();
    const client = await udpClient();
    client.send(rawRequest({ branch: 'z9hG4bKudp1' }), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'UDP request');
    const { msg, source } = inbox[0]!;
    const clientPort = client.address().port;
    expect(source).toEqual({ transport: 'udp', address: '127.0.0.1', port: clientPort });
    expect(msg.kind === 'request' && msg.method).toBe('OPTIONS');
    expect(msg.source).toEqual(source);
    const via = parseVia(msg.headers.getAll('Via')[0]!);
    expect(via.params).toMatchObject({ branch: 'z9hG4bKudp1', received: '127.0.0.1', rport: String(clientPort) });
    expect(responseDestination(via, source)).toEqual({ transport: 'udp', address: '127.0.0.1', port: clientPort });
    expect(layer.counters.received).toBe(1);
  });

  it('leaves the Via alone when its host is the source address and there is no rport', async () => {
    const { layer, inbox } = await startLayer();
    const client = await udpClient();
    const via = `SIP/2.0/UDP 127.0.0.1:${client.address().port};branch=z9hG4bKsame`;
    client.send(rawRequest({ branch: 'z9hG4bKsame', via }), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'UDP request');
    expect(inbox[0]!.msg.headers.getAll('Via')[0]).toBe(via);
  });

  it('counts a garbage datagram as a parse error and does not deliver it', async () => {
    const { layer, inbox } = await startLayer();
    const errors: Array<{ error: string; partial: SipRequest | undefined }> = [];
    layer.onParseError((error, partial) => errors.push({ error, partial }));
    const client = await udpClient();
    client.send(Buffer.from([0x16, 0x03, 0x01, 0xff, 0x00, 0x42]), layer.localPort, '127.0.0.1');
    client.send(rawRequest({ branch: 'z9hG4bKafter' }), layer.localPort, '127.0.0.1');
    await waitFor(() => inbox.length === 1, 'valid request after garbage');
    expect(layer.counters.parseErrors).toBe(1);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.partial).toBeUndefined();
    expect(inbox[0]!.msg.headers.get('Call-ID')).toBe('z9hG4bKafter@example.com');
  });

  it('reports a malformed request that still has the headers for a 400 as a partial', async () => {
    const { layer, inbox } = await startLayer();
    const errors: Array<{ error: string; partial: SipRequest | undefined; source: SipEndpoint }> = [];
    layer.onParseError((error, partial, source) => errors.push({ error, partial, source }));
    const client = await udpClient();
    client.send(
      rawRequest({ method: 'INVITE', branch: 'z9hG4bKbad', version: 'SIP/3.0' }),
      layer.localPort,
      '127.0.0.1',
    );
    await waitFor(() => errors.length === 1, 'parse error');
    expect(inbox).toHaveLength(0);
    const { partial, source } = errors[0]!;
    expect(partial?.method).toBe('INVITE');
    expect(partial?.headers.get('Call-ID')).toBe('z9hG4bKbad@example.com');
    expect(source.port).toBe(client.address().port);
    expect(layer.counters.parseErrors).toBe(1);
  });

  it('frames two TCP messages in one write and one message split across writes', async () => {
    const { layer, inbox } = await startLayer();
    const { sock } = await tcpClient(layer.localPort);
    const tcpVia = (b: string) => `SIP/2.0/TCP 127.0.0.1:5060;branch=${b}`;
    sock.write(
      rawRequest({ branch: 'z9hG4bKt1', via: tcpVia('z9hG4bKt1') }) +
        rawRequest({ branch: 'z9hG4bKt2', via: tcpVia('z9hG4bKt2') }),
    );
    await waitFor(() => inbox.length === 2, 'two TCP messages');
    const split = Buffer.from(
      rawRequest({
        method: 'MESSAGE',
        branch: 'z9hG4bKt3',
        via: tcpVia('z9hG4bKt3'),
        body: 'hello, world',
        extra: 'Content-Type: text/plain',
      }),
    );
    sock.write(split.subarray(0, 40));
    await new Promise((r) => setTimeout(r, 20));
    sock.write(split.subarray(40, split.length - 5));
    await new Promise((r) => setTimeout(r, 20));
    expect(inbox).toHaveLength(2);
    sock.write(split.subarray(split.length - 5));
    await waitFor(() => inbox.length === 3, 'split TCP message');
    expect(inbox.map((m) => m.msg.headers.get('Call-ID'))).toEqual([
      'z9hG4bKt1@example.com',
      'z9hG4bKt2@example.com',
      'z9hG4bKt3@example.com',
    ]);
    expect(inbox[2]!.msg.body.toString()).toBe('hello, world');
    expect(inbox[2]!.source).toEqual({ transport: 'tcp', address: '127.0.0.1', port: sock.localPort });
  });

  it('answers on the inbound TCP connection the request came on', async () => {
    const { layer, inbox } = await startLayer();
    const client = await tcpClient(layer.localPort);
    client.sock.write(rawRequest({ branch: 'z9hG4bKreuse', via: 'SIP/2.0/TCP 127.0.0.1:5099;branch=z9hG4bKreuse' }));
    await waitFor(() => inbox.length === 1, 'TCP request');
    const { msg, source } = inbox[0]!;
    layer.send(
      buildResponse(msg as SipRequest, 200, 'OK'),
      responseDestination(parseVia(msg.headers.getAll('Via')[0]!), source),
    );
    await waitFor(() => client.received().includes('\r\n\r\n'), 'response on the same connection');
    expect(client.received()).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    expect(client.received()).toContain('Content-Length: 0');
  });

  it('opens an outbound TCP connection and gets the response back on it', async () => {
    const a = await startLayer();
    const b = await startLayer();
    const h = new SipHeaders();
    h.append('Via', `SIP/2.0/TCP 127.0.0.1:${a.layer.localPort};branch=z9hG4bKout;rport`);
    for (const [n, v] of [
      ['Max-Forwards', '70'],
      ['From', '<sip:a@x>;tag=1'],
      ['To', '<sip:b@y>'],
      ['Call-ID', 'out@x'],
      ['CSeq', '1 OPTIONS'],
    ])
      h.append(n!, v!);
    a.layer.send(createRequest('OPTIONS', 'sip:b@127.0.0.1', h), {
      transport: 'tcp',
      address: '127.0.0.1',
      port: b.layer.localPort,
    });
    await waitFor(() => b.inbox.length === 1, 'request at B');
    const { msg, source } = b.inbox[0]!;
    b.layer.send(
      buildResponse(msg as SipRequest, 200),
      responseDestination(parseVia(msg.headers.getAll('Via')[0]!), source),
    );
    await waitFor(() => a.inbox.length === 1, 'response at A');
    expect(a.inbox[0]!.msg.kind === 'response' && a.inbox[0]!.msg.status).toBe(200);
    expect(a.inbox[0]!.source).toEqual({ transport: 'tcp', address: '127.0.0.1', port: b.layer.localPort });
    expect(a.layer.counters.sent).toBe(1);
  });

  it('reports a TCP connect failure through onSendError', async () => {
    const { layer } = await startLayer();
    const closed = net.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const failures: Array<{ error: Error; msg: SipMessage }> = [];
    layer.onSendError((error, msg) => failures.push({ error, msg }));
    const req = createRequest(
      'OPTIONS',
      'sip:x@127.0.0.1',
      new SipHeaders([['Via', 'SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKdead']]),
    );
    layer.send(req, { transport: 'tcp', address: '127.0.0.1', port: deadPort });
    await waitFor(() => failures.length === 1, 'send error');
    expect(failures[0]!.msg).toBe(req);
    expect((failures[0]!.error as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect(layer.counters.dropped).toBe(1);
  });

  it('closes a TCP connection after a fatal framing error', async () => {
    const { layer, inbox } = await startLayer();
    const { sock } = await tcpClient(layer.localPort);
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.write('OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bKnocl\r\n\r\n');
    await closed;
    expect(inbox).toHaveLength(0);
    expect(layer.counters.parseErrors).toBe(1);
  });
});
