/**
 * Durability end to end: the daemon is killed (SIGKILL) in the middle of an answered, translated call. Nothing could
 * run at exit, so the call row stays 'active' in the registry and the Kallglot session stays open. A new daemon on the
 * same DATA_DIR must find the orphan at start-up, close its row (end_reason gateway_restart) and end its session
 * exactly once, with Kallglot reason `error`, while the sandbox (the "real" Kallglot) kept running throughout.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  TEST_TIMEOUT_MS,
  callRows,
  pendingEnds,
  startRig,
  waitFor,
  waitForAdminCall,
  waitForAnswered,
  type DurabilityRig,
} from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

describe('crash recovery', () => {
  it('kill -9 during a call: the restarted daemon ends the orphaned session (error) and closes the row (gateway_restart)', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw1 = await r.startGateway();
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { timeoutSec: 60 });
    // A long talk time: the PBX would only hang up after a minute; the crash comes long before.
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 50_000, timeoutSec: 60 });
    await waitForAnswered(r);

    const [session] = r.sandbox.sessions();
    expect(session, r.diag()).toBeDefined();
    expect(session!.endCalls, r.diag()).toBe(0);
    const before = callRows(r.dataDir);
    expect(before, r.diag()).toHaveLength(1);
    expect(before[0], r.diag()).toMatchObject({ state: 'active', session_id: session!.id, route: 'translated' });
    expect(before[0]!.answer_at, r.diag()).not.toBeNull();
    const callId = before[0]!.call_id;

    gw1.signal('SIGKILL');
    expect(await gw1.exited).toBe('SIGKILL');
    expect(gw1.summaries(), r.diag()).toHaveLength(0); // killed: no call summary, no session end, nothing at exit
    // Both SIPp ends lost their peer; the call cannot be resumed, so they are stopped.
    await Promise.all([uas.stop(), pbx.stop()]);
    const [uasResult, pbxResult] = await Promise.all([uas.done, pbx.done]);
    const d = () => r.diag(pbxResult, uasResult);
    expect(uasResult.stopped && pbxResult.stopped, d()).toBe(true);

    // Still as the crash left it: the row active, the session open at Kallglot.
    expect(callRows(r.dataDir)[0], d()).toMatchObject({
      call_id: callId,
      state: 'active',
      end_reason: null,
      session_end_status: null,
    });
    expect(r.sandbox.sessions()[0]!.endCalls, d()).toBe(0);
    expect(r.sandbox.stats().endRequests, d()).toBe(0);

    const gw2 = await r.startGateway();
    const recovered = await gw2.waitForLog((l) => l.msg === 'recovered state from a previous run');
    expect(recovered, d()).toMatchObject({ orphans: 1, pendingEnds: 1 });
    expect(
      gw2.logs.some(
        (l) =>
          l.msg === 'orphaned call from a previous run closed' && l.callId === callId && l.sessionId === session!.id,
      ),
      d(),
    ).toBe(true);

    const ended = await waitFor(
      () => {
        const s = r.sandbox.sessions()[0];
        return s && s.endCalls > 0 ? s : undefined;
      },
      15_000,
      d,
    );
    expect(ended, d()).toMatchObject({ id: session!.id, endReason: 'error' });

    // The registry, as the admin API reports it, once the end is confirmed.
    const confirmed = await waitForAdminCall(gw2, callId, (c) => c.session_end_status === 'ended', d);
    expect(confirmed, d()).toMatchObject({
      call_id: callId,
      state: 'ended',
      end_reason: 'gateway_restart',
      session_id: session!.id,
      session_end_status: 'ended',
    });
    expect(confirmed.end_at, d()).not.toBeNull();
    expect(pendingEnds(r.dataDir), d()).toEqual([]);

    // Exactly once: no late duplicate end, not even after a clean stop of the second daemon.
    await gw2.stop();
    expect(await gw2.exited).toBe(0);
    const [final] = r.sandbox.sessions();
    expect(final, d()).toMatchObject({ endCalls: 1, endReason: 'error' });
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1, endRequests: 1 });
    expect(
      callRows(r.dataDir).filter((c) => c.state === 'active'),
      d(),
    ).toEqual([]);
  });
});
