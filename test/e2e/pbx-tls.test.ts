/**
 * TLS from the PBX, end to end: PBX (SIPp UAC on TCP) → socat (TCP in, TLS out, verifying the gateway's certificate
 * against the test CA) → gateway daemon listening on SIP_TLS_PORT → Telnyx (SIPp UAS, UDP). Debian's SIPp has no
 * TLS, hence socat. Also: the certificate is re-read on SIGHUP, and a bad one is refused while the old one serves.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { type SocatRun, tlsOriginator } from '../helpers/socat.ts';
import { createTestPki, type KeyPair, type TestPki } from '../helpers/test-pki.ts';
import { type E2eEnv, findMessages, headerOf, sdpLines, startE2e, TRANSLATED_NUMBER, waitFor } from './harness.ts';

let pki: TestPki;
let ca: KeyPair;
let gwCert: KeyPair;
let renewedCert: KeyPair;

beforeAll(() => {
  pki = createTestPki();
  ca = pki.ca('Kallglot Test CA');
  gwCert = pki.server(ca, 'gw', { names: ['gw.test'] });
  renewedCert = pki.server(ca, 'gw-renewed', { names: ['gw.test'] });
}, 30_000);
afterAll(() => pki.remove());

let env: E2eEnv | undefined;
let relay: SocatRun | undefined;
afterEach(async () => {
  await env?.teardown();
  await relay?.stop();
  env = undefined;
  relay = undefined;
});

/** A gateway listening on TLS with copies of the gateway certificate (so a test may replace them). */
async function startTlsGateway(): Promise<{ e: E2eEnv; tlsPort: number; files: KeyPair }> {
  const dir = fs.mkdtempSync(path.join(pki.dir, 'served-'));
  const files = { certFile: path.join(dir, 'cert.pem'), keyFile: path.join(dir, 'key.pem') };
  fs.copyFileSync(gwCert.certFile, files.certFile);
  fs.copyFileSync(gwCert.keyFile, files.keyFile);
  const tlsPort = await freePort('tcp');
  env = await startE2e({
    SIP_TRANSPORTS: 'udp,tcp,tls',
    SIP_TLS_PORT: String(tlsPort),
    SIP_TLS_CERT_FILE: files.certFile,
    SIP_TLS_KEY_FILE: files.keyFile,
  });
  return { e: env, tlsPort, files };
}

const fingerprintOf = (file: string): string => new crypto.X509Certificate(fs.readFileSync(file)).fingerprint256;

/** The certificate the gateway serves to a new TLS connection (verified against the test CA). */
async function servedFingerprint(port: number): Promise<string> {
  const sock = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(ca.certFile), servername: 'gw.test' });
  try {
    await new Promise<void>((resolve, reject) => sock.once('secureConnect', resolve).once('error', reject));
    return sock.getPeerX509Certificate()?.fingerprint256 ?? '';
  } finally {
    sock.destroy();
  }
}

describe('TLS from the PBX', () => {
  it.each([
    ['sip', /^<sip:gw@127\.0\.0\.1:(\d+);transport=tls>$/],
    ['sips', /^<sips:gw@127\.0\.0\.1:(\d+)>$/],
  ])(
    'a %s: call with SDES keys over TLS: answered with a Contact on the TLS port, SDP untouched, BYE',
    async (scheme, contact) => {
      const { e, tlsPort } = await startTlsGateway();
      const relayPort = await freePort('tcp');
      relay = tlsOriginator({ listenPort: relayPort, target: tlsPort, caFile: ca.certFile, serverName: 'gw.test' });
      await relay.ready;
      const uas = e.sipp({ scenario: 'uas-answer-srtp-sdes-expect-bye.xml', localPort: e.uasPort, calls: 1 });
      await uas.ready;
      const pbx = await e.sipp({
        scenario: 'uac-invite-srtp-sdes-then-bye.xml',
        remote: `127.0.0.1:${relayPort}`,
        localPort: e.uacPort,
        transport: 'tcp',
        service: TRANSLATED_NUMBER,
        keys: { scheme },
        calls: 1,
        timeoutSec: 15,
      }).done;
      const telnyx = await uas.done;
      const d = () => e.diag(pbx, telnyx);
      expect(pbx.exitCode, d()).toBe(0);
      expect(telnyx.exitCode, d()).toBe(0);

      const ok = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE')[0]!;
      const m = contact.exec(headerOf(ok.text, 'Contact') ?? '');
      expect(m?.[1], d()).toBe(String(tlsPort));
      const offer = (text: string) => sdpLines(text.replace(/\r\n/g, '\n'), ['a=crypto:', 'm=']);
      const sent = findMessages(pbx.messages, 'sent', 'INVITE ')[0]!;
      const got = findMessages(telnyx.messages, 'received', 'INVITE ')[0]!;
      expect(offer(got.text), d()).toEqual(offer(sent.text));
      expect(offer(ok.text), d()).toEqual(
        offer(findMessages(telnyx.messages, 'sent', 'SIP/2.0 200', 'INVITE')[0]!.text),
      );
      expect(findMessages(telnyx.messages, 'received', 'BYE '), d()).toHaveLength(1);
      const ended = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions(), 10_000, d);
      expect(ended[0]!.endCalls).toBe(1);
      expect(relay.accepted()).toBe(1);
    },
    60_000,
  );

  it('SIGHUP re-reads the certificate: new connections get the renewed one; a key that does not match is refused', async () => {
    const { e, tlsPort, files } = await startTlsGateway();
    expect(await servedFingerprint(tlsPort)).toBe(fingerprintOf(gwCert.certFile));

    fs.copyFileSync(renewedCert.certFile, files.certFile);
    fs.copyFileSync(renewedCert.keyFile, files.keyFile);
    e.gw.signal('SIGHUP');
    const reloaded = await e.gw.waitForLog((l) => l.msg === 'SIP TLS certificate reloaded');
    expect(reloaded.fingerprint256).toBe(fingerprintOf(renewedCert.certFile));
    expect(await servedFingerprint(tlsPort)).toBe(fingerprintOf(renewedCert.certFile));
    // The same signal still reloads the routing rules.
    await e.gw.waitForLog((l) => l.msg === 'SIGHUP: reloading routing rules');

    fs.copyFileSync(gwCert.keyFile, files.keyFile); // half-way through a renewal: the key no longer matches
    e.gw.signal('SIGHUP');
    const refused = await e.gw.waitForLog((l) => String(l.msg).startsWith('SIP TLS certificate reload refused'));
    expect(refused.level).toBe('error');
    expect(String(refused.error)).toContain(files.keyFile);
    expect(await servedFingerprint(tlsPort)).toBe(fingerprintOf(renewedCert.certFile));
  }, 60_000);

  it('refuses to start when SIP_TRANSPORTS lists tls without a certificate, naming both settings', async () => {
    const { startGateway } = await import('../helpers/gateway.ts');
    const gw = await startGateway({ env: { SIP_TRANSPORTS: 'udp,tls' }, waitReady: false });
    expect(await gw.exited).toBe(2);
    expect(gw.stderr()).toMatch(
      /SIP_TLS_CERT_FILE \(sip\.tlsCertFile\) and SIP_TLS_KEY_FILE \(sip\.tlsKeyFile\) are required when SIP_TRANSPORTS \(sip\.transports\) lists tls/,
    );
  }, 30_000);
});
