/**
 * Durability end to end: MAX_CALL_DURATION_SEC bounds a call neither side hangs up (a lost BYE, a stuck PBX). The
 * gateway must BYE both legs itself, end the Kallglot session with reason `timeout` and record the call as ended
 * with `max_call_duration`. Both SIPp sides only succeed if they receive that BYE.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  TEST_TIMEOUT_MS,
  callRows,
  findMessages,
  headerOf,
  pendingEnds,
  startRig,
  waitFor,
  type DurabilityRig,
} from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

describe('max call duration', () => {
  it('MAX_CALL_DURATION_SEC=2: the gateway BYEs both legs and ends the session with reason timeout', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    await r.startGateway({ MAX_CALL_DURATION_SEC: '2' });
    // Neither side would ever hang up: only the gateway's BYE ends these scenarios (else SIPp times out, exit 255).
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { timeoutSec: 20 });
    const pbx = await r.startPbx('uac-invite-200-expect-bye.xml', { timeoutSec: 20 });
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const d = () => r.diag(pbxResult, uasResult);

    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    for (const side of [pbxResult, uasResult]) {
      const byes = findMessages(side.messages, 'received', 'BYE ');
      expect(byes.length, d()).toBeGreaterThanOrEqual(1);
      expect(headerOf(byes[0]!.text, 'Reason'), d()).toMatch(/max_call_duration/);
    }

    const summary = await waitFor(() => r.gw.summaries()[0], 5_000, d);
    expect(summary, d()).toMatchObject({ route: 'translated', endReason: 'max_call_duration', sipStatus: 200 });
    // Answered, then cut after about the limit (not asserted tightly: timing is not what this test is about).
    expect(Number(summary.durationMs), d()).toBeGreaterThanOrEqual(1900);

    const [session] = await waitFor(
      () => {
        const s = r.sandbox.sessions();
        return s.length === 1 && s[0]!.endCalls > 0 ? s : undefined;
      },
      10_000,
      d,
    );
    expect(session, d()).toMatchObject({ id: summary.sessionId, endReason: 'timeout' });
    await new Promise((res) => setTimeout(res, 500));
    expect(r.sandbox.sessions()[0]!.endCalls, d()).toBe(1);
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1 });

    await waitFor(() => pendingEnds(r.dataDir).length === 0, 5_000, d);
    const rows = callRows(r.dataDir);
    expect(rows, d()).toHaveLength(1);
    expect(rows[0], d()).toMatchObject({
      state: 'ended',
      end_reason: 'max_call_duration',
      session_id: session!.id,
      session_end_status: 'ended',
    });
  });
});
