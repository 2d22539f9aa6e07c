/**
 * SIP extensions the PBX may require (RFC 3261 §8.2.2.3). The gateway supports session timers end to end but not
 * reliable provisional responses (RFC 3262 100rel, PRACK): an INVITE with `Require: 100rel` gets 420 Bad Extension
 * with `Unsupported: 100rel` before any work, so no Kallglot session is created and nothing reaches Telnyx.
 * (`Supported: 100rel` alone is fine: the gateway then simply sends unreliable provisionals, as RFC 3262 allows.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER, findMessages, headerOf, startE2e, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('required extensions', () => {
  it('Require: 100rel → 420 with Unsupported: 100rel, no session, no INVITE to Telnyx', async () => {
    const e = (env = await startE2e());
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 10 });
    await uas.ready;
    const pbx = await e.sipp({
      scenario: 'uac-invite-require-100rel-expect-420.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: TRANSLATED_NUMBER,
      calls: 1,
      timeoutSec: 10,
    }).done;
    await uas.stop();
    const telnyx = await uas.done;
    const d = () => e.diag(pbx, telnyx);
    expect(pbx.exitCode, d()).toBe(0);
    const refusal = findMessages(pbx.messages, 'received', 'SIP/2.0 420')[0];
    expect(headerOf(refusal?.text ?? '', 'Unsupported'), d()).toBe('100rel');
    expect(findMessages(telnyx.messages, 'received', 'INVITE '), d()).toHaveLength(0);
    expect(e.sandbox.stats().createRequests, d()).toBe(0);
    await e.gw.waitForLog((l) => l.msg === 'INVITE requires an unsupported extension: 420');
  });
});
