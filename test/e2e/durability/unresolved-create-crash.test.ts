/**
 * Durability end to end, a create of unknown outcome across a crash: Kallglot answers the session create only after
 * the gateway's create deadline, so the call goes through untranslated while Kallglot made the session all the same.
 * The daemon is killed (SIGKILL) before it resolves that create (its first re-send is set a long way off). Nothing
 * in the calls table knows of the session; the create's row in unresolved_creates does. A new daemon on the same
 * DATA_DIR re-sends the stored create with its Idempotency-Key, gets the session back and ends it exactly once, with
 * Kallglot reason `error`, while the sandbox (the "real" Kallglot) kept running throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  TEST_TIMEOUT_MS,
  callRows,
  type DurabilityRig,
  pendingEnds,
  startRig,
  unresolvedCreates,
  waitFor,
} from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

describe('crash with a create of unknown outcome unresolved', () => {
  it('kill -9 before the resolution: the restarted daemon ends the session the late create made, once (error)', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    // One create attempt (its timeout far above the deadline), cut at 1 s; Kallglot makes the session at 2.5 s. The
    // first re-send would come 10 minutes later: the crash comes long before.
    const gw1 = await r.startGateway({
      KALLGLOT_CREATE_DEADLINE_MS: '1000',
      KALLGLOT_REQUEST_TIMEOUT_MS: '10000',
      KALLGLOT_CREATE_RESOLVE_DELAY_MS: '600000',
    });
    r.sandbox.injectFailure({ endpoint: 'create', latencyMs: 2500, times: 1 });
    const uas = await r.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml');
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const d = () => r.diag(pbxResult, uasResult);
    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    const summary = await gw1.waitForLog((l) => l.msg === 'call summary');
    expect(summary, d()).toMatchObject({ route: 'fallback', fallbackReason: 'kallglot_deadline_exceeded' });
    expect(summary.sessionId, d()).toBeUndefined();

    // Kallglot made the session; the gateway knows of it only as a create of unknown outcome, committed to disk.
    const [session] = await waitFor(
      () => (r.sandbox.sessions().length === 1 ? r.sandbox.sessions() : undefined),
      10_000,
      d,
    );
    const [row] = await waitFor(
      () => (unresolvedCreates(r.dataDir).length === 1 ? unresolvedCreates(r.dataDir) : undefined),
      10_000,
      d,
    );
    expect(row, d()).toMatchObject({
      idempotency_key: session!.idempotencyKey,
      call_id: summary.callId,
      code: 'deadline_exceeded',
      attempts: 0,
    });
    expect(row!.request, d()).not.toContain('sk_test_durability');
    expect(callRows(r.dataDir), d()).toMatchObject([{ call_id: summary.callId, state: 'ended', session_id: null }]);

    gw1.signal('SIGKILL');
    expect(await gw1.exited).toBe('SIGKILL');
    // As the crash left it: the session open at Kallglot, nobody asked to end it.
    expect(r.sandbox.sessions()[0], d()).toMatchObject({ id: session!.id, endCalls: 0 });
    expect(r.sandbox.stats().endRequests, d()).toBe(0);

    const gw2 = await r.startGateway();
    const recovered = await gw2.waitForLog((l) => l.msg === 'recovered state from a previous run');
    expect(recovered, d()).toMatchObject({ orphans: 0, pendingEnds: 0, unresolvedCreates: 1 });
    const ended = await waitFor(
      () => {
        const s = r.sandbox.sessions()[0];
        return s && s.endCalls > 0 ? s : undefined;
      },
      15_000,
      d,
    );
    expect(ended, d()).toMatchObject({ id: session!.id, endReason: 'error' });
    const found = gw2.logs.find((l) => l.msg === 'Kallglot made a session for a create that failed here: ending it');
    expect(found, d()).toMatchObject({ sessionId: session!.id, callId: summary.callId });
    // Settled: the row is gone and the end confirmed (no pending end left).
    await waitFor(() => unresolvedCreates(r.dataDir).length === 0 && pendingEnds(r.dataDir).length === 0, 10_000, d);

    // Exactly once: no second end, not after a clean stop, not after yet another start.
    await gw2.stop();
    expect(await gw2.exited).toBe(0);
    const gw3 = await r.startGateway();
    await new Promise((res) => setTimeout(res, 1500));
    expect(
      gw3.logs.some((l) => l.msg === 'recovered state from a previous run'),
      d(),
    ).toBe(false);
    await gw3.stop();
    expect(r.sandbox.sessions(), d()).toMatchObject([{ id: session!.id, endCalls: 1, endReason: 'error' }]);
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1, endRequests: 1 });
  });
});
