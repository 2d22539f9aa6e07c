/**
 * Durability end to end: Kallglot's end endpoint is down (503) when a call ends. The end is persisted in the registry
 * (pending_session_ends) and retried with backoff; once Kallglot recovers it arrives exactly once and the pending row
 * is deleted. Across a restart (SIGTERM or kill -9 while the end is still failing) the next daemon on the same
 * DATA_DIR resumes the persisted end.
 *
 * The sandbox's endCalls counts only ends it processed: an injected 503 answers before the session is touched, as a
 * real outage would (the request never reached the session). So endCalls === 1 is what the real Kallglot would see;
 * stats().endRequests counts every HTTP attempt, failed ones included.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SippResult } from '../../helpers/sipp.ts';
import {
  TEST_TIMEOUT_MS,
  callRows,
  pendingEnds,
  startRig,
  waitFor,
  waitForAdminCall,
  type DurabilityRig,
} from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

/** One translated call hung up by the PBX while Kallglot's end endpoint fails; returns once the end failed at least twice. */
async function callEndsDuringOutage(r: DurabilityRig): Promise<{ sessionId: string; callId: string; d: () => string }> {
  r.sandbox.injectFailure({ endpoint: 'end', status: 503 });
  const uas = await r.startUas('uas-answer-200-expect-bye.xml');
  const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 300 });
  const results: SippResult[] = await Promise.all([pbx.done, uas.done]);
  const d = () => r.diag(...results);
  expect(results[0]!.exitCode, d()).toBe(0);
  expect(results[1]!.exitCode, d()).toBe(0);

  const summary = await waitFor(() => r.gw.summaries()[0], 10_000, d);
  expect(summary, d()).toMatchObject({ route: 'translated', endReason: 'bye_from_pbx' });
  const sessionId = String(summary.sessionId);
  // Retried, and every failed attempt recorded against the persisted end.
  const pending = await waitFor(
    () => pendingEnds(r.dataDir).find((p) => p.session_id === sessionId && p.attempts >= 2),
    20_000,
    d,
  );
  expect(pending, d()).toMatchObject({ reason: 'agent_hangup', call_id: summary.callId });
  expect(pending.last_error, d()).toMatch(/503|unavailable/i);
  expect(callRows(r.dataDir)[0], d()).toMatchObject({
    state: 'ended',
    session_id: sessionId,
    session_end_status: 'pending',
  });
  expect(
    r.gw.logs.some((l) => l.msg === 'ending Kallglot session failed; will retry' && l.sessionId === sessionId),
    d(),
  ).toBe(true);
  // Kallglot has not processed any end yet, though the gateway kept asking.
  expect(
    r.sandbox.sessions().map((s) => s.endCalls),
    d(),
  ).toEqual([0]);
  expect(r.sandbox.stats().endRequests, d()).toBeGreaterThanOrEqual(2);
  return { sessionId, callId: String(summary.callId), d };
}

/** After the outage: the session was ended exactly once, with the call's own reason, and nothing is pending. */
async function endedExactlyOnce(r: DurabilityRig, sessionId: string, d: () => string): Promise<void> {
  await waitFor(() => r.sandbox.sessions()[0]!.endCalls > 0, 15_000, d);
  await waitFor(() => pendingEnds(r.dataDir).length === 0, 5_000, d);
  await new Promise((res) => setTimeout(res, 1500)); // a stray retry would land in this window
  const sessions = r.sandbox.sessions();
  expect(sessions, d()).toHaveLength(1);
  expect(sessions[0], d()).toMatchObject({ id: sessionId, endCalls: 1, endReason: 'agent_hangup' });
  expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1 });
  expect(pendingEnds(r.dataDir), d()).toEqual([]);
}

describe('Kallglot end outage', () => {
  it('a failing end is persisted and retried; after recovery it arrives exactly once and the pending row is gone', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    await r.startGateway();
    const { sessionId, callId, d } = await callEndsDuringOutage(r);

    r.sandbox.clearFailures();
    await endedExactlyOnce(r, sessionId, d);
    const row = await waitForAdminCall(r.gw, callId, (c) => c.session_end_status === 'ended', d);
    expect(row, d()).toMatchObject({ state: 'ended', end_reason: 'bye_from_pbx', session_id: sessionId });
  });

  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    it(`${signal} while the end is still failing: the next daemon resumes the persisted end, which arrives exactly once`, {
      timeout: TEST_TIMEOUT_MS,
    }, async () => {
      const r = (rig = await startRig());
      const gw1 = await r.startGateway();
      const { sessionId, callId, d } = await callEndsDuringOutage(r);

      gw1.signal(signal);
      // SIGTERM: a clean stop that waits (bounded) for pending ends, then exits 0 leaving the end persisted.
      expect(await gw1.exited, d()).toBe(signal === 'SIGTERM' ? 0 : 'SIGKILL');
      if (signal === 'SIGTERM') {
        expect(
          gw1.logs.some((l) => l.msg === 'some Kallglot session ends did not complete before exit'),
          d(),
        ).toBe(true);
      }
      const left = pendingEnds(r.dataDir);
      expect(left, d()).toHaveLength(1);
      expect(left[0], d()).toMatchObject({ session_id: sessionId, reason: 'agent_hangup' });
      expect(left[0]!.attempts, d()).toBeGreaterThanOrEqual(2);
      expect(r.sandbox.sessions()[0]!.endCalls, d()).toBe(0);

      r.sandbox.clearFailures();
      const gw2 = await r.startGateway();
      const recovered = await gw2.waitForLog((l) => l.msg === 'recovered state from a previous run');
      expect(recovered, d()).toMatchObject({ orphans: 0, pendingEnds: 1 });
      expect(
        gw2.logs.some((l) => l.msg === 'resuming pending Kallglot session end' && l.sessionId === sessionId),
        d(),
      ).toBe(true);

      await endedExactlyOnce(r, sessionId, d);
      const row = await waitForAdminCall(gw2, callId, (c) => c.session_end_status === 'ended', d);
      expect(row, d()).toMatchObject({ state: 'ended', end_reason: 'bye_from_pbx', session_id: sessionId });
      await gw2.stop();
      expect(await gw2.exited, d()).toBe(0);
      expect(r.sandbox.sessions()[0]!.endCalls, d()).toBe(1);
    });
  }
});
