/**
 * End to end with real SIPp: the shape of the Kallglot create-session request (KALLGLOT_REQUEST_STYLE) and the party
 * it names. PBX (SIPp UAC) → gateway daemon → Telnyx (SIPp UAS), Kallglot played by the sandbox, which records the
 * shape and `sip_uri` each session was created with. The other party of a call from the PBX is its direct route:
 * DIRECT_URI_TEMPLATE filled with the call's values, whichever style carries it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER, findMessages, startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

/** One translated call hung up by the PBX; resolves once its session has ended. */
async function translatedCall(e: E2eEnv): Promise<void> {
  const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
  await uas.ready;
  const uac = e.sipp({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    service: TRANSLATED_NUMBER,
    calls: 1,
    durationMs: 200,
    timeoutSec: 15,
  });
  const uacResult = await uac.done;
  if (uacResult.exitCode !== 0) setTimeout(() => void uas.stop(), 1000);
  const uasResult = await uas.done;
  const d = () => e.diag(uacResult, uasResult);
  expect(uacResult.exitCode, d()).toBe(0);
  expect(uasResult.exitCode, d()).toBe(0);
  await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
  // The request shape changes nothing about the call: the translated leg still goes to the session.
  const [session] = e.sandbox.sessions();
  const invites = findMessages(uasResult.messages, 'received', 'INVITE ');
  expect(
    invites.map((m) => m.startLine),
    d(),
  ).toEqual([`INVITE sip:${session!.id}@sip.telnyx.com SIP/2.0`]);
  const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
  expect(summary, d()).toMatchObject({ route: 'translated', sessionId: session!.id, endReason: 'bye_from_pbx' });
}

describe('the Kallglot session request of a translated SIP call', () => {
  it('by default (routing): routing {type sip, sip_uri} naming the direct route, no provider', async () => {
    const e = (env = await startE2e());
    await translatedCall(e);
    const [s] = e.sandbox.sessions();
    const uri = `sip:${TRANSLATED_NUMBER}@sip.telnyx.com`;
    expect(s, e.diag()).toMatchObject({ requestStyle: 'routing', sipUri: uri, routing: { type: 'sip', sip_uri: uri } });
    expect(s!.provider, e.diag()).toBeUndefined();
    expect(s!.metadata, e.diag()).toMatchObject({ to: TRANSLATED_NUMBER, rule: 'german-numbers' });
  }, 60_000);

  it('KALLGLOT_REQUEST_STYLE=provider: provider {type telnyx, sip_uri} naming the direct route, no routing', async () => {
    const e = (env = await startE2e({ KALLGLOT_REQUEST_STYLE: 'provider' }));
    await translatedCall(e);
    const [s] = e.sandbox.sessions();
    const uri = `sip:${TRANSLATED_NUMBER}@sip.telnyx.com`;
    expect(s, e.diag()).toMatchObject({
      requestStyle: 'provider',
      sipUri: uri,
      provider: { type: 'telnyx', sip_uri: uri },
    });
    expect(s!.routing, e.diag()).toBeUndefined();
  }, 60_000);

  it('follows DIRECT_URI_TEMPLATE: the party named is the URI the direct route would dial', async () => {
    const e = (env = await startE2e({
      KALLGLOT_REQUEST_STYLE: 'provider',
      DIRECT_URI_TEMPLATE: 'sips:{called}@pstn.example.net;user=phone',
    }));
    await translatedCall(e);
    const [s] = e.sandbox.sessions();
    expect(s?.sipUri, e.diag()).toBe(`sips:${TRANSLATED_NUMBER}@pstn.example.net;user=phone`);
  }, 60_000);
});
