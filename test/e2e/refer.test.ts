/**
 * Transfers (REFER, RFC 3515) from the PBX, end to end with real SIPp (REFER_POLICY):
 * - relay (default): the agent's blind transfer reaches Telnyx with its Refer-To and Referred-By, the 202 and the
 *   NOTIFY (sipfrag) come back to the PBX, and when the transferee leaves (Telnyx's BYE) the call ends and its
 *   Kallglot session is ended exactly once;
 * - reject: the REFER gets 603 from the gateway, nothing reaches Telnyx, the call goes on until the PBX hangs up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { callThrough, findMessages, headerOf, startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('REFER from the PBX', () => {
  it('relay: blind transfer crosses with Refer-To/Referred-By, NOTIFY comes back, the session ends once', async () => {
    const e = (env = await startE2e());
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-blind-transfer-refer-expect-202-notify-bye.xml',
      uas: 'uas-answer-refer-202-notify-then-bye.xml',
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const refer = findMessages(telnyx.messages, 'received', 'REFER ')[0];
    expect(headerOf(refer?.text ?? '', 'Refer-To'), d()).toBe('<sip:+4989777@pbx.example>');
    expect(headerOf(refer?.text ?? '', 'Referred-By'), d()).toBe('<sip:agent@pbx.example>');
    const notify = findMessages(pbx.messages, 'received', 'NOTIFY ')[0];
    expect(headerOf(notify?.text ?? '', 'Event'), d()).toBe('refer');
    const session = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions()[0], 10_000, d);
    expect(session, d()).toMatchObject({ endCalls: 1, endReason: 'customer_hangup' });
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      endReason: 'bye_from_telnyx',
    });
  });

  it('reject: 603 to the REFER, nothing reaches Telnyx, the call goes on until the PBX hangs up', async () => {
    const e = (env = await startE2e({ REFER_POLICY: 'reject' }));
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-refer-expect-603-then-bye.xml',
      uas: 'uas-answer-200-expect-bye.xml',
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    expect(findMessages(telnyx.messages, 'received', 'REFER '), d()).toHaveLength(0);
    await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      endReason: 'bye_from_pbx',
    });
  });
});
