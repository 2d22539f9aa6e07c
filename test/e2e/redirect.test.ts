/**
 * 3xx from Telnyx, end to end with real SIPp (REDIRECT_POLICY):
 * - follow (default): the translated INVITE is redirected (302) to an allowed host and the gateway follows it: the
 *   call is answered translated on the redirect target, one session created and ended;
 * - a redirect to a host not in REDIRECT_ALLOWED_DOMAINS is not followed: the translated leg falls back, the direct
 *   leg is redirected too, and the PBX gets 503 (never sent where the gateway refused to go);
 * - relay: the direct leg's 302 reaches the PBX with its Contact, so the PBX can follow it itself.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { callThrough, findMessages, headerOf, startE2e, waitFor, type E2eEnv } from './harness.ts';

const REDIRECTING_UAS = 'uas-302-redirect-then-answer-redirected.xml';
let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('3xx redirects from Telnyx', () => {
  it('follow: the translated leg follows a 302 to an allowed host and is answered there', async () => {
    const e = (env = await startE2e({ REDIRECT_ALLOWED_DOMAINS: '127.0.0.1' }));
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-invite-200-then-bye.xml',
      uas: REDIRECTING_UAS,
      uasCalls: 2,
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const invites = findMessages(telnyx.messages, 'received', 'INVITE ');
    const session = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions()[0], 10_000, d);
    expect(
      invites.map((m) => m.startLine),
      d(),
    ).toEqual([
      `INVITE sip:${session.id}@sip.telnyx.com SIP/2.0`,
      `INVITE sip:redirected@127.0.0.1:${e.uasPort} SIP/2.0`,
    ]);
    expect(headerOf(invites[1]?.text ?? '', 'X-Kallglot-Session-Id'), d()).toBe(session.id);
    expect(e.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1 });
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      telnyxUri: `sip:redirected@127.0.0.1:${e.uasPort}`,
      endReason: 'bye_from_pbx',
    });
  });

  it('follow, target not allowed: not followed, fallback redirected too, the PBX gets 503', async () => {
    const e = (env = await startE2e());
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-invite-expect-503.xml',
      uas: REDIRECTING_UAS,
      uasCalls: 2,
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    expect(findMessages(telnyx.messages, 'received', 'INVITE sip:redirected'), d()).toHaveLength(0);
    await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'fallback',
      sipStatus: 503,
    });
    await e.gw.waitForLog((l) => l.msg === 'redirect not followed: no allowed target (REDIRECT_ALLOWED_DOMAINS)');
  });

  it("relay: the direct leg's 302 reaches the PBX with its Contact", async () => {
    const e = (env = await startE2e({ REDIRECT_POLICY: 'relay' }));
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-invite-expect-302-with-contact.xml',
      uas: REDIRECTING_UAS,
      uasCalls: 2,
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const moved = findMessages(pbx.messages, 'received', 'SIP/2.0 302')[0];
    expect(headerOf(moved?.text ?? '', 'Contact'), d()).toBe(`<sip:redirected@127.0.0.1:${e.uasPort}>;q=0.9`);
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'fallback',
      sipStatus: 302,
    });
  });
});
