/**
 * The transport layer over TLS, against node:tls peers and certificates made by the test (openssl CLI): the
 * certificate and name checks of connections we open, connection reuse, CRLF keep-alive pings and pongs, the TLS
 * listener, and a certificate reload.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import netModule from 'node:net';
import type net from 'node:net';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.ts';
import { createRequest, SipHeaders } from '../../../src/sip/embedded/message.ts';
import type { SipEndpoint, SipMessage, SipRequest } from '../../../src/sip/embedded/message.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction.ts';
import {
  responseDestination,
  TransportLayer,
  type TransportLayerOptions,
} from '../../../src/sip/embedded/transport.ts';
import { parseVia } from '../../../src/sip/embedded/via.ts';
import { createTestPki, type KeyPair, type TestPki } from '../../helpers/test-pki.ts';

let pki: TestPki;
let ca: KeyPair;
let otherCa: KeyPair;
let telnyx: KeyPair;
let wrongName: KeyPair;
let otherCaTelnyx: KeyPair;
let gw: KeyPair;
let gwRenewed: KeyPair;

beforeAll(() => {
  pki = createTestPki();
  ca = pki.ca('Kallglot Test CA');
  otherCa = pki.ca('Someone Else CA');
  telnyx = pki.server(ca, 'telnyx', { names: ['sip.telnyx.com'] });
  wrongName = pki.server(ca, 'wrong-name', { names: ['sbc.elsewhere.test'] });
  otherCaTelnyx = pki.server(otherCa, 'telnyx-other-ca', { names: ['sip.telnyx.com'] });
  gw = pki.server(ca, 'gw', { names: ['gw.test'], ips: ['127.0.0.1'] });
  gwRenewed = pki.server(ca, 'gw-renewed', { names: ['gw.test'], ips: ['127.0.0.1'] });
}, 30_000);

afterAll(() => pki.remove());

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

interface LogCapture {
  lines: Array<Record<string, unknown>>;
}

async function startLayer(opts: Partial<TransportLayerOptions> = {}) {
  const log: LogCapture = { lines: [] };
  const destination = { write: (line: string) => void log.lines.push(JSON.parse(line) as Record<string, unknown>) };
  const layer = new TransportLayer({
    host: '127.0.0.1',
    port: 0,
    transports: ['udp', 'tcp'],
    tlsCaFile: ca.certFile,
    logger: createLogger('debug', destination),
    ...opts,
  });
  await layer.start();
  cleanups.push(() => layer.stop());
  const inbox: Array<{ msg: SipMessage; source: SipEndpoint }> = [];
  layer.onMessage((msg, source) => inbox.push({ msg, source }));
  const failures: Array<{ error: Error; dest: SipEndpoint }> = [];
  layer.onSendError((error, _msg, dest) => failures.push({ error, dest }));
  return { layer, inbox, failures, log };
}

interface Peer {
  port: number;
  /** Bytes received, per accepted connection. */
  connections: Array<{ data: string; servername: string | false | null; socket: tls.TLSSocket }>;
}

/** A TLS server playing Telnyx's SBC. */
async function tlsPeer(pair: KeyPair): Promise<Peer> {
  const peer: Peer = { port: 0, connections: [] };
  const server = tls.createServer({ cert: fs.readFileSync(pair.certFile), key: fs.readFileSync(pair.keyFile) }, (s) => {
    const conn = { data: '', servername: s.servername, socket: s };
    peer.connections.push(conn);
    s.on('data', (d: Buffer) => {
      conn.data += d.toString('latin1');
    });
    s.on('error', () => undefined);
  });
  server.on('tlsClientError', () => undefined);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  peer.port = (server.address() as net.AddressInfo).port;
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const c of peer.connections) c.socket.destroy();
        server.close(() => r());
      }),
  );
  return peer;
}

function options(uri: string, branch: string): SipRequest {
  const h = new SipHeaders();
  for (const [n, v] of [
    ['Via', `SIP/2.0/TLS 127.0.0.1:5061;branch=${branch};rport`],
    ['Max-Forwards', '70'],
    ['From', '<sip:gw@127.0.0.1>;tag=1'],
    ['To', `<${uri}>`],
    ['Call-ID', `${branch}@gw`],
    ['CSeq', '1 OPTIONS'],
  ] as const)
    h.append(n, v);
  return createRequest('OPTIONS', uri, h);
}

async function waitFor(cond: () => boolean, what: string, ms = 3000): Promise<void> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; ) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}

const to = (port: number, extra: Partial<SipEndpoint> = {}): SipEndpoint => ({
  transport: 'tls',
  address: '127.0.0.1',
  port,
  ...extra,
});

describe('TLS connections the gateway opens', () => {
  it('verifies the peer against the CA file, sends the Request-URI domain as SNI, and reuses the connection', async () => {
    const { layer, failures } = await startLayer();
    const peer = await tlsPeer(telnyx);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKt1'), to(peer.port));
    layer.send(options('sip:sess_2@sip.telnyx.com', 'z9hG4bKt2'), to(peer.port));
    await waitFor(() => (peer.connections[0]?.data.match(/^OPTIONS /gm) ?? []).length === 2, 'two requests');
    expect(peer.connections).toHaveLength(1);
    expect(peer.connections[0]!.servername).toBe('sip.telnyx.com');
    expect(failures).toEqual([]);
    expect(layer.counters.sent).toBe(2);
  });

  it('gets responses and requests from the peer on the connection it opened', async () => {
    const { layer, inbox } = await startLayer();
    const peer = await tlsPeer(telnyx);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKback'), to(peer.port));
    await waitFor(() => peer.connections[0]?.data.includes('\r\n\r\n') === true, 'request at the peer');
    const res =
      'SIP/2.0 200 OK\r\nVia: SIP/2.0/TLS 127.0.0.1:5061;branch=z9hG4bKback;rport\r\nFrom: <sip:gw@127.0.0.1>;tag=1\r\nTo: <sip:sess_1@sip.telnyx.com>;tag=2\r\nCall-ID: z9hG4bKback@gw\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n';
    peer.connections[0]!.socket.write(res);
    await waitFor(() => inbox.length === 1, 'response');
    expect(inbox[0]!.source).toEqual({ transport: 'tls', address: '127.0.0.1', port: peer.port });
  });

  it('checks an outbound proxy configured by name against that name', async () => {
    const { layer, failures } = await startLayer();
    const peer = await tlsPeer(wrongName);
    layer.send(
      options('sip:sess_1@sip.telnyx.com', 'z9hG4bKproxy'),
      to(peer.port, { serverName: 'sbc.elsewhere.test' }),
    );
    await waitFor(() => peer.connections[0]?.data.includes('OPTIONS ') === true, 'request through the proxy');
    expect(peer.connections[0]!.servername).toBe('sbc.elsewhere.test');
    expect(failures).toEqual([]);
  });

  it('reconnecting to a peer known by address only (a dialog Contact) checks the name verified first', async () => {
    const { layer, failures } = await startLayer();
    const peer = await tlsPeer(telnyx);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKfirst'), to(peer.port));
    await waitFor(() => peer.connections[0]?.data.includes('OPTIONS ') === true, 'first request');
    peer.connections[0]!.socket.destroy();
    await new Promise((r) => setTimeout(r, 100)); // the layer sees the close
    layer.send(options(`sip:+4930123@127.0.0.1:${peer.port};transport=tls`, 'z9hG4bKbye'), to(peer.port));
    await waitFor(() => peer.connections[1]?.data.includes('OPTIONS ') === true, 'request on a new connection');
    expect(peer.connections[1]!.servername).toBe('sip.telnyx.com');
    expect(failures).toEqual([]);
  });

  it.each([
    ['signed by another CA', () => otherCaTelnyx, /unable to verify the first certificate \(no CA the gateway trusts/],
    ['issued for another name', () => wrongName, /Hostname\/IP does not match certificate's altnames/],
  ])('refuses a certificate %s: a clear log line and a send error', async (_what, pair, reason) => {
    const { layer, failures, log } = await startLayer();
    const peer = await tlsPeer(pair());
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKbad'), to(peer.port));
    await waitFor(() => failures.length === 1, 'send error');
    expect(failures[0]!.dest.port).toBe(peer.port);
    const line = log.lines.find((l) => String(l.msg).startsWith('TLS certificate of'));
    expect(line?.msg).toMatch(
      new RegExp(`^TLS certificate of sip\\.telnyx\\.com \\(127\\.0\\.0\\.1:${peer.port}\\) refused: `),
    );
    expect(line?.msg).toMatch(reason);
    expect(line?.level).toBe('error');
    expect(peer.connections.every((c) => !c.data.includes('OPTIONS'))).toBe(true);
  });

  it('trusts only the system CAs without a CA file', async () => {
    const { layer, failures } = await startLayer({ tlsCaFile: undefined });
    const peer = await tlsPeer(telnyx);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKnoca'), to(peer.port));
    await waitFor(() => failures.length === 1, 'send error');
    expect((failures[0]!.error as NodeJS.ErrnoException).code).toBe('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
  });

  it('refuses to start with a CA file that is not PEM, naming the setting', () => {
    const garbage = `${pki.dir}/garbage.pem`;
    fs.writeFileSync(garbage, 'not a certificate');
    expect(() => new TransportLayer({ host: '127.0.0.1', port: 0, transports: ['udp'], tlsCaFile: garbage })).toThrow(
      /TELNYX_TLS_CA_FILE=.*garbage\.pem.*no PEM certificate/,
    );
  });

  it('gives up a connection whose TLS handshake never completes, and opens a new one for the next message', async () => {
    const { layer, failures, log } = await startLayer({ connectTimeoutMs: 300 });
    // An SBC that accepts TCP and then says nothing: the ClientHello is never answered.
    const accepted: net.Socket[] = [];
    const silent = netModule.createServer((s) => {
      accepted.push(s);
      s.on('error', () => undefined);
    });
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          for (const s of accepted) s.destroy();
          silent.close(() => r());
        }),
    );
    const port = (silent.address() as net.AddressInfo).port;
    const started = Date.now();
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKsilent1'), to(port));
    await waitFor(() => failures.length === 1, 'the send error', 3000);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(failures[0]!.error.message).toMatch(
      /connect and TLS handshake to 127\.0\.0\.1:\d+ did not complete within 300 ms/,
    );
    expect(log.lines.some((l) => l.msg === 'SIP connect and TLS handshake timed out')).toBe(true);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKsilent2'), to(port));
    await waitFor(() => accepted.length === 2, 'a second connection', 3000);
    await waitFor(() => failures.length === 2, 'the second send error', 3000);
  });

  it('sends CRLF keep-alive pings on an idle connection it opened', async () => {
    const { layer } = await startLayer({ keepAliveIntervalMs: 100 });
    const peer = await tlsPeer(telnyx);
    layer.send(options('sip:sess_1@sip.telnyx.com', 'z9hG4bKka'), to(peer.port));
    await waitFor(() => (peer.connections[0]?.data.split('\r\n\r\n\r\n\r\n').length ?? 0) >= 3, 'two pings', 5000);
    const afterMessage = peer.connections[0]!.data.slice(peer.connections[0]!.data.indexOf('Content-Length: 0') + 21);
    expect(afterMessage).toMatch(/^(\r\n\r\n)+$/);
  });
});

describe('the TLS listener', () => {
  async function tlsListener(opts: Partial<TransportLayerOptions> = {}) {
    return startLayer({
      transports: ['udp', 'tcp', 'tls'],
      tls: { port: 0, certFile: gw.certFile, keyFile: gw.keyFile },
      ...opts,
    });
  }

  function connect(port: number): Promise<tls.TLSSocket & { received(): string }> {
    const sock = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(ca.certFile), servername: 'gw.test' });
    cleanups.push(() => void sock.destroy());
    let data = '';
    sock.on('data', (d: Buffer) => {
      data += d.toString('latin1');
    });
    return new Promise((resolve, reject) => {
      sock.once('secureConnect', () => resolve(Object.assign(sock, { received: () => data })));
      sock.once('error', reject);
    });
  }

  it('listens on its own port, delivers requests with transport tls and answers on the same connection', async () => {
    const { layer, inbox } = await tlsListener();
    expect(layer.tlsPort).toBeGreaterThan(0);
    expect(layer.tlsPort).not.toBe(layer.localPort);
    const pbx = await connect(layer.tlsPort);
    pbx.write(
      'OPTIONS sip:gw@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TLS 10.1.2.3:5061;branch=z9hG4bKin\r\nMax-Forwards: 70\r\nFrom: <sip:pbx@x>;tag=1\r\nTo: <sip:gw@y>\r\nCall-ID: in@x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n',
    );
    await waitFor(() => inbox.length === 1, 'request over TLS');
    const { msg, source } = inbox[0]!;
    expect(source).toEqual({ transport: 'tls', address: '127.0.0.1', port: pbx.localPort });
    const dest = responseDestination(parseVia(msg.headers.getAll('Via')[0]!), source);
    expect(dest).toEqual(source);
    layer.send(buildResponse(msg as SipRequest, 200, 'OK'), dest);
    await waitFor(() => pbx.received().startsWith('SIP/2.0 200 OK\r\n'), 'response on the same connection');
  });

  it('answers a CRLFCRLF ping with one CRLF pong, and a lone CRLF with nothing', async () => {
    const { layer, inbox } = await tlsListener();
    const pbx = await connect(layer.tlsPort);
    pbx.write('\r\n');
    await new Promise((r) => setTimeout(r, 100));
    expect(pbx.received()).toBe('');
    pbx.write('\r\n\r\n');
    await waitFor(() => pbx.received() === '\r\n', 'pong');
    pbx.write('\r\n\r');
    pbx.write('\n');
    await waitFor(() => pbx.received() === '\r\n\r\n', 'second pong (ping split in two writes)');
    expect(inbox).toEqual([]);
  });

  it('serves a renewed certificate after reloadCertificates(), and keeps the old one when the files are bad', async () => {
    const dir = fs.mkdtempSync(`${pki.dir}/reload-`);
    const files = { certFile: `${dir}/cert.pem`, keyFile: `${dir}/key.pem` };
    fs.copyFileSync(gw.certFile, files.certFile);
    fs.copyFileSync(gw.keyFile, files.keyFile);
    const { layer } = await tlsListener({ tls: { port: 0, ...files } });
    const served = async (): Promise<string> => {
      const sock = await connect(layer.tlsPort);
      const fp = sock.getPeerX509Certificate()?.fingerprint256 ?? '';
      sock.destroy();
      return fp;
    };
    const fingerprint = (f: string): string => new crypto.X509Certificate(fs.readFileSync(f)).fingerprint256;
    expect(await served()).toBe(fingerprint(gw.certFile));

    fs.copyFileSync(gwRenewed.certFile, files.certFile);
    fs.copyFileSync(gwRenewed.keyFile, files.keyFile);
    expect(layer.reloadCertificates()).toMatchObject({
      outcome: 'reloaded',
      fingerprint256: fingerprint(gwRenewed.certFile),
    });
    expect(await served()).toBe(fingerprint(gwRenewed.certFile));

    fs.copyFileSync(gw.keyFile, files.keyFile); // the key no longer matches the certificate
    expect(layer.reloadCertificates()).toMatchObject({
      outcome: 'refused',
      error: expect.stringMatching(/SIP_TLS_KEY_FILE/),
    });
    expect(await served()).toBe(fingerprint(gwRenewed.certFile));
  });

  it('refuses to start without a certificate, or with one it cannot read', async () => {
    const layer = new TransportLayer({ host: '127.0.0.1', port: 0, transports: ['udp', 'tls'] });
    await expect(layer.start()).rejects.toThrow(/SIP_TLS_CERT_FILE/);
    await layer.stop();
    const missing = new TransportLayer({
      host: '127.0.0.1',
      port: 0,
      transports: ['udp', 'tls'],
      tls: { port: 0, certFile: `${pki.dir}/missing.pem`, keyFile: gw.keyFile },
    });
    await expect(missing.start()).rejects.toThrow(/cannot load the SIP TLS certificate .*missing\.pem/);
    await missing.stop();
  });
});
