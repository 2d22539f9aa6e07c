/**
 * TLS toward Telnyx, end to end: PBX (SIPp UAC, UDP) → gateway daemon → TLS → "Telnyx" (socat terminating TLS with a
 * certificate made by this test, in front of a SIPp UAS on TCP; Debian's SIPp has no TLS). Kallglot is the sandbox.
 *
 * The certificate names sip.telnyx.com, the default TELNYX_SIP_DOMAIN, and TELNYX_OUTBOUND_PROXY points at socat by
 * IP: the gateway checks the certificate against the Request-URI's domain (RFC 5922), so no DNS for a test name and no
 * extra setting are needed, and this is the set-up an operator pinning Telnyx's SBC address by IP gets.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import type { SippResult } from '../helpers/sipp.ts';
import { type SocatRun, tlsTerminator } from '../helpers/socat.ts';
import { createTestPki, type KeyPair, type TestPki } from '../helpers/test-pki.ts';
import { type E2eEnv, findMessages, headerOf, sdpLines, startE2e, TRANSLATED_NUMBER, waitFor } from './harness.ts';

let pki: TestPki;
let ca: KeyPair;
let telnyxCert: KeyPair;
let strangerCert: KeyPair;

beforeAll(() => {
  pki = createTestPki();
  ca = pki.ca('Kallglot Test CA');
  telnyxCert = pki.server(ca, 'telnyx', { names: ['sip.telnyx.com'] });
  strangerCert = pki.server(pki.ca('Unknown CA'), 'stranger', { names: ['sip.telnyx.com'] });
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

/** The gateway sends to Telnyx over TLS via socat (the certificate given) to a SIPp UAS on TCP. */
async function startTlsTelnyx(cert: KeyPair, extraEnv: Record<string, string> = {}): Promise<E2eEnv> {
  const tlsPort = await freePort('tcp');
  const e = await startE2e({
    TELNYX_SIP_TRANSPORT: 'tls',
    TELNYX_TLS_CA_FILE: ca.certFile,
    TELNYX_OUTBOUND_PROXY: `127.0.0.1:${tlsPort}`,
    ...extraEnv,
  });
  env = e;
  relay = tlsTerminator({ listenPort: tlsPort, target: e.uasPort, ...cert });
  await relay.ready;
  return e;
}

async function call(e: E2eEnv, uac: string, keys?: Record<string, string>): Promise<SippResult> {
  return e.sipp({
    scenario: uac,
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    service: TRANSLATED_NUMBER,
    calls: 1,
    timeoutSec: 15,
    keys,
  }).done;
}

/** Everything after the blank line, as SIPp logged it: no normalisation, so "unchanged" means byte for byte. */
function rawBody(text: string): string {
  const idx = text.search(/\r?\n\r?\n/);
  return idx < 0 ? '' : text.slice(idx);
}

describe('TLS toward Telnyx', () => {
  it('translated calls over one verified TLS connection: Via TLS, Contact transport=tls, BYE, session ended once', async () => {
    const e = await startTlsTelnyx(telnyxCert);
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, transport: 'tcp', calls: 2 });
    await uas.ready;
    const first = await call(e, 'uac-invite-200-then-bye.xml');
    expect(first.exitCode, e.diag(first)).toBe(0);
    const second = await call(e, 'uac-invite-200-then-bye.xml');
    expect(second.exitCode, e.diag(second)).toBe(0);
    const telnyx = await uas.done;
    const d = () => e.diag(first, second, telnyx);
    expect(telnyx.exitCode, d()).toBe(0);

    const invites = findMessages(telnyx.messages, 'received', 'INVITE ');
    expect(invites, d()).toHaveLength(2);
    for (const invite of invites) {
      // SIPp sits behind the TLS relay, so it logs TCP; the gateway wrote what it really used.
      expect(invite.transport).toBe('TCP');
      expect(invite.startLine, d()).toMatch(/^INVITE sip:sess_\w+@sip\.telnyx\.com SIP\/2\.0$/);
      expect(headerOf(invite.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/TLS 127\.0\.0\.1:\d+;branch=z9hG4bK/);
      expect(headerOf(invite.text, 'Contact'), d()).toMatch(/^<sip:gw@127\.0\.0\.1:\d+;transport=tls>$/);
    }
    expect(findMessages(telnyx.messages, 'received', 'BYE '), d()).toHaveLength(2);
    // Two calls, each INVITE/ACK/BYE, and the gateway opened one TLS connection for all of it.
    expect(relay!.accepted(), d()).toBe(1);

    const ended = await waitFor(() => e.sandbox.stats().ended === 2 && e.sandbox.sessions(), 10_000, d);
    expect(ended.map((s) => s.endCalls)).toEqual([1, 1]);
    await e.gw.waitForLog((l) => l.msg === 'call summary' && e.gw.summaries().length === 2, 5000);
    expect(e.gw.summaries().map((s) => [s.route, s.sipStatus])).toEqual([
      ['translated', 200],
      ['translated', 200],
    ]);
    expect(
      e.gw.logs.filter((l) => String(l.msg).startsWith('TLS certificate of')),
      d(),
    ).toEqual([]);
  }, 60_000);

  it('SRTP: the SDES a=crypto lines and the whole SDP cross the gateway byte for byte, both ways', async () => {
    const e = await startTlsTelnyx(telnyxCert);
    const uas = e.sipp({
      scenario: 'uas-answer-srtp-sdes-expect-bye.xml',
      localPort: e.uasPort,
      transport: 'tcp',
      calls: 1,
    });
    await uas.ready;
    const pbx = await call(e, 'uac-invite-srtp-sdes-then-bye.xml', { scheme: 'sip' });
    const telnyx = await uas.done;
    const d = () => e.diag(pbx, telnyx);
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);

    const offerSent = findMessages(pbx.messages, 'sent', 'INVITE ')[0]!;
    const offerGot = findMessages(telnyx.messages, 'received', 'INVITE ')[0]!;
    const answerSent = findMessages(telnyx.messages, 'sent', 'SIP/2.0 200', 'INVITE')[0]!;
    const answerGot = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE')[0]!;
    const crypto = (text: string) => sdpLines(rawBody(text).replace(/\r\n/g, '\n'), ['a=crypto:']);
    expect(crypto(offerSent.text)).toEqual([
      'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^20|1:4',
      'a=crypto:2 AES_CM_128_HMAC_SHA1_32 inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32',
    ]);
    expect(crypto(offerGot.text), d()).toEqual(crypto(offerSent.text));
    expect(crypto(answerSent.text)).toEqual([
      'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4',
    ]);
    expect(crypto(answerGot.text), d()).toEqual(crypto(answerSent.text));
    expect(rawBody(offerGot.text), d()).toBe(rawBody(offerSent.text));
    expect(rawBody(answerGot.text), d()).toBe(rawBody(answerSent.text));
    expect(headerOf(offerGot.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/TLS /);
  }, 60_000);

  it('a sips: Request-URI goes over TLS whatever TELNYX_SIP_TRANSPORT says, with a sips: Contact', async () => {
    const e = await startTlsTelnyx(telnyxCert, {
      TELNYX_SIP_TRANSPORT: 'udp',
      TRANSLATED_URI_TEMPLATE: 'sips:{session_id}@{domain}',
    });
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, transport: 'tcp', calls: 1 });
    await uas.ready;
    const pbx = await call(e, 'uac-invite-200-then-bye.xml');
    const telnyx = await uas.done;
    const d = () => e.diag(pbx, telnyx);
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const invite = findMessages(telnyx.messages, 'received', 'INVITE ')[0]!;
    expect(invite.startLine, d()).toMatch(/^INVITE sips:sess_\w+@sip\.telnyx\.com SIP\/2\.0$/);
    expect(headerOf(invite.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/TLS /);
    expect(headerOf(invite.text, 'Contact'), d()).toMatch(/^<sips:gw@127\.0\.0\.1:\d+>$/);
    const bye = findMessages(telnyx.messages, 'received', 'BYE ')[0];
    expect(bye && headerOf(bye.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/TLS /);
    await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
  }, 60_000);

  it('a certificate from a CA it does not trust is refused with a clear log line; the PBX gets 503, nothing reaches Telnyx', async () => {
    const e = await startTlsTelnyx(strangerCert);
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, transport: 'tcp', calls: 1 });
    await uas.ready;
    // Nothing hangs: SIPp gives up after its 15 s -timeout (exit 255), well before a 32 s Timer B would fire; a
    // refused certificate fails the INVITE as a transport error at once.
    const pbx = await call(e, 'uac-invite-expect-503.xml');
    const d = () => e.diag(pbx);
    expect(pbx.exitCode, d()).toBe(0);

    const refusals = e.gw.logs.filter((l) => String(l.msg).startsWith('TLS certificate of'));
    expect(refusals.length, d()).toBeGreaterThanOrEqual(1);
    expect(refusals[0]!.msg, d()).toMatch(
      /^TLS certificate of sip\.telnyx\.com \(127\.0\.0\.1:\d+\) refused: unable to verify the first certificate \(no CA the gateway trusts signed it/,
    );
    expect(refusals[0]!.level).toBe('error');
    // The translated leg failed as a transport error (503) and the call fell back to the direct route, also over TLS
    // to the same SBC, refused the same way.
    await e.gw.waitForLog((l) => l.msg === 'falling back to the untranslated direct route', 5000);
    expect(e.gw.logs.find((l) => l.msg === 'falling back to the untranslated direct route')?.why).toBe(
      'translated_leg_503',
    );
    const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
    expect(summary.sipStatus, d()).toBe(503);
    const ended = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions(), 10_000, d);
    expect(ended[0]!.endCalls).toBe(1);

    await uas.stop();
    const telnyx = await uas.done;
    expect(findMessages(telnyx.messages, 'received', 'INVITE '), e.diag(telnyx)).toEqual([]);
  }, 60_000);
});
