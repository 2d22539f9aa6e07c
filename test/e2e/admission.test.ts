/**
 * End to end with real SIPp: what the gateway refuses or answers itself, without any call being set up.
 * A PBX outside the source allowlist gets 403 (no Kallglot session, nothing sent to Telnyx); a trunk keep-alive
 * OPTIONS gets 200; a malformed request gets a 400 naming its fault and the daemon keeps serving.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER, findMessages, headerOf, startE2e, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

async function optionsGets200(e: E2eEnv): Promise<void> {
  const run = e.sipp({
    scenario: 'uac-options-expect-200.xml',
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    calls: 1,
    timeoutSec: 10,
  });
  const r = await run.done;
  expect(r.exitCode, e.diag(r)).toBe(0);
  const ok = findMessages(r.messages, 'received', 'SIP/2.0 200', 'OPTIONS');
  expect(ok.length, e.diag(r)).toBeGreaterThanOrEqual(1);
  expect(headerOf(ok[0]!.text, 'Allow'), e.diag(r)).toMatch(/\bINVITE\b/);
}

/** Sends one raw datagram to the gateway and resolves with the first reply (or undefined after timeoutMs). */
async function sendRaw(
  port: number,
  build: (localPort: number) => string,
  timeoutMs = 3000,
): Promise<string | undefined> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  try {
    const reply = new Promise<string | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), timeoutMs);
      sock.once('message', (msg) => {
        clearTimeout(timer);
        resolve(msg.toString('latin1'));
      });
    });
    sock.send(Buffer.from(build(sock.address().port), 'latin1'), port, '127.0.0.1');
    return await reply;
  } finally {
    sock.close();
  }
}

describe('admission and out-of-dialog requests', () => {
  it('refuses an INVITE from a source outside PBX_ALLOWED_SOURCES with 403: no session, nothing sent to Telnyx', async () => {
    const e = (env = await startE2e({ PBX_ALLOWED_SOURCES: '10.0.0.0/8' }));
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
    await uas.ready;
    const uacRun = e.sipp({
      scenario: 'uac-invite-expect-403.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: TRANSLATED_NUMBER,
      calls: 1,
      timeoutSec: 10,
    });
    const uac = await uacRun.done;
    // Leave the gateway time to (wrongly) place an outbound leg before looking at the UAS.
    const refused = await e.gw.waitForLog((l) => l.msg === 'INVITE refused at admission', 5000);
    await new Promise((res) => setTimeout(res, 500));
    await uas.stop();
    const s = await uas.done;
    const d = () => e.diag(uac, s);

    expect(uac.exitCode, d()).toBe(0);
    const forbidden = findMessages(uac.messages, 'received', 'SIP/2.0 403');
    expect(forbidden.length, d()).toBeGreaterThanOrEqual(1);
    expect(headerOf(forbidden[0]!.text, 'To'), d()).toMatch(/;tag=/);
    expect(findMessages(uac.messages, 'received', 'SIP/2.0 200'), d()).toHaveLength(0);

    expect(s.stopped, d()).toBe(true); // it had no call to finish: only the harness could end it
    expect(findMessages(s.messages, 'received', 'INVITE '), d()).toHaveLength(0);
    expect(e.sandbox.stats(), d()).toMatchObject({ created: 0, createRequests: 0, endRequests: 0 });

    expect(refused, d()).toMatchObject({ why: 'source_not_allowed', status: 403, source: '127.0.0.1' });
    expect(
      e.gw.logs.some((l) => l.msg === 'new call'),
      d(),
    ).toBe(false);
    // Refused before any call existed: one summary line says so.
    expect(e.gw.summaries(), d()).toMatchObject([
      { route: 'rejected', endReason: 'source_not_allowed', sipStatus: 403 },
    ]);
  }, 60_000);

  it('answers an out-of-dialog OPTIONS with 200', async () => {
    const e = (env = await startE2e());
    await optionsGets200(e);
    expect(e.sandbox.stats().createRequests).toBe(0);
    expect(e.gw.summaries()).toHaveLength(0);
  }, 60_000);

  it('answers a request with a bad CSeq with a 400 naming the fault, then keeps serving', async () => {
    const e = (env = await startE2e());
    const callId = `bad-cseq-${Date.now()}@127.0.0.1`;
    const reply = await sendRaw(e.gw.sipPort, (port) =>
      [
        `INVITE sip:${TRANSLATED_NUMBER}@127.0.0.1:${e.gw.sipPort} SIP/2.0`,
        `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bK-badcseq-1`,
        'From: <sip:pbx@127.0.0.1>;tag=bad1',
        `To: <sip:${TRANSLATED_NUMBER}@127.0.0.1>`,
        `Call-ID: ${callId}`,
        'CSeq: one INVITE',
        'Max-Forwards: 70',
        'Content-Length: 0',
        '',
        '',
      ].join('\r\n'),
    );
    const d = () => `reply: ${reply ?? '(none)'}\n${e.diag()}`;
    expect(reply, d()).toBeDefined();
    const statusLine = reply!.split('\r\n', 1)[0]!;
    expect(statusLine, d()).toMatch(/^SIP\/2\.0 400 /);
    expect(statusLine, d()).toMatch(/CSeq/i);
    expect(headerOf(reply!, 'Call-ID'), d()).toBe(callId);
    expect(headerOf(reply!, 'Via'), d()).toMatch(/branch=z9hG4bK-badcseq-1/);
    const logged = await e.gw.waitForLog((l) => l.msg === 'malformed SIP message', 5000);
    expect(String(logged.error), d()).toMatch(/CSeq/i);

    // Still serving: the next request is answered normally, and the bad one started nothing.
    await optionsGets200(e);
    expect(e.sandbox.stats().createRequests, d()).toBe(0);
    expect(
      e.gw.logs.some((l) => l.msg === 'new call'),
      d(),
    ).toBe(false);
    expect(e.gw.summaries(), d()).toHaveLength(0);
  }, 60_000);
});
