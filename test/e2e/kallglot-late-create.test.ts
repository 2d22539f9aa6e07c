/**
 * End to end, real daemon and SIPp on both sides: Kallglot answers the session create only after the gateway's
 * create deadline. The call goes through untranslated on the direct route, as it must, and the session Kallglot made
 * all the same is found (the create re-sent with its Idempotency-Key) and ended, once, with reason `error`: no
 * session is left open (sessions/create-resolver.ts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { DIRECT_URI, E2E_TIMEOUT_MS, inviteUris, startRig, stopRig, waitFor, waitForSummary } from './failure-rig.ts';

afterEach(stopRig);

describe('Kallglot answers the create after the deadline', () => {
  it('the call goes direct and the late session is ended exactly once', { timeout: E2E_TIMEOUT_MS }, async () => {
    // One attempt (its timeout is far above the deadline), cut at 1 s; Kallglot makes the session at 2.5 s.
    const rig = await startRig({ KALLGLOT_CREATE_DEADLINE_MS: '1000', KALLGLOT_REQUEST_TIMEOUT_MS: '10000' });
    rig.sandbox.injectFailure({ endpoint: 'create', latencyMs: 2500, times: 1 });
    const uas = await rig.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
    const telnyx = await uas.done;
    expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([DIRECT_URI]);
    const summary = await waitForSummary(rig);
    expect(summary, rig.diag()).toMatchObject({
      route: 'fallback',
      fallbackReason: 'kallglot_deadline_exceeded',
      telnyxUri: DIRECT_URI,
    });
    expect(summary.sessionId).toBeUndefined();

    const [session] = await waitFor(
      () => {
        const s = rig.sandbox.sessions();
        return s.length === 1 && s[0]!.endedAt !== undefined ? s : undefined;
      },
      15_000,
      'the late session ended',
      () => rig.diag(),
    );
    expect(session, rig.diag()).toMatchObject({ idempotencyKey: expect.stringMatching(/^sip-/), endReason: 'error' });
    const resolved = rig.gw.logs.find(
      (l) => l.msg === 'Kallglot made a session for a create that failed here: ending it',
    );
    expect(resolved, rig.diag()).toMatchObject({ sessionId: session!.id, callId: summary.callId });

    // The delayed original reaches Kallglot too: it replays the same session, and nothing ends it a second time.
    await new Promise((r) => setTimeout(r, 3000));
    expect(rig.sandbox.sessions(), rig.diag()).toHaveLength(1);
    expect(rig.sandbox.sessions()[0]!.endCalls, rig.diag()).toBe(1);
    expect(rig.sandbox.stats(), rig.diag()).toMatchObject({ created: 1, ended: 1, endRequests: 1 });
    const metrics = await (await fetch(`http://127.0.0.1:${rig.gw.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^kallglot_gateway_kallglot_unknown_creates_total\{outcome="ended"\} 1$/m);
    expect(metrics).toMatch(/^kallglot_gateway_pending_session_ends 0$/m);
  });
});
