/**
 * Durability end to end: admission limits protect the gateway under a burst. With MAX_CONCURRENT_CALLS=3, a burst of
 * 8 calls of ~2 s each (SIPp -r 8 -l 8 -m 8, the whole burst within one second) gets exactly 3 calls through and 5
 * refused with 503 + Retry-After before any work is done: no Kallglot session and no INVITE to Telnyx for them.
 * Every admitted call completes and its session is ended exactly once. Below the limit, every call goes through.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SippResult } from '../../helpers/sipp.ts';
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

/** Final responses to the INVITEs of a UAC run, per Call-ID (retransmissions collapse onto their call). */
function outcomes(r: SippResult): {
  answered: Set<string>;
  refused: Set<string>;
  retryAfter: Array<string | undefined>;
} {
  const answered = new Set<string>();
  const refused = new Set<string>();
  const retryAfter: Array<string | undefined> = [];
  for (const m of findMessages(r.messages, 'received', 'SIP/2.0 200', 'INVITE'))
    answered.add(headerOf(m.text, 'Call-ID')!);
  for (const m of findMessages(r.messages, 'received', 'SIP/2.0 503', 'INVITE')) {
    const callId = headerOf(m.text, 'Call-ID')!;
    if (!refused.has(callId)) retryAfter.push(headerOf(m.text, 'Retry-After'));
    refused.add(callId);
  }
  return { answered, refused, retryAfter };
}

/** Runs `calls` simultaneous PBX calls of `talkMs` against the current daemon, with a UAS answering `expectAnswered`. */
async function burst(r: DurabilityRig, calls: number, expectAnswered: number, talkMs: number) {
  const uas = await r.startUas('uas-answer-200-expect-bye.xml', { calls: expectAnswered, timeoutSec: 30 });
  const pbx = await r.startPbx('uac-invite-200-or-503.xml', {
    calls,
    rate: calls,
    ratePeriodMs: 1000,
    concurrent: calls,
    durationMs: talkMs,
    timeoutSec: 30,
  });
  const pbxResult = await pbx.done;
  // If the UAC failed, the UAS may wait for calls that never come: do not let it run to its own timeout.
  if (pbxResult.exitCode !== 0) setTimeout(() => void uas.stop(), 2000);
  const uasResult = await uas.done;
  return { pbxResult, uasResult, d: () => r.diag(pbxResult, uasResult) };
}

/** Every created session ended exactly once (agent_hangup: the PBX hung up), one per answered call. */
async function sessionsEndedOnce(r: DurabilityRig, answered: number, d: () => string): Promise<void> {
  await waitFor(
    () => {
      const s = r.sandbox.sessions();
      return s.length === answered && s.every((x) => x.endCalls > 0);
    },
    15_000,
    d,
  );
  await new Promise((res) => setTimeout(res, 500)); // a late duplicate end would land here
  const sessions = r.sandbox.sessions();
  expect(
    sessions.map((s) => [s.endCalls, s.endReason]),
    d(),
  ).toEqual(sessions.map(() => [1, 'agent_hangup']));
  expect(r.sandbox.stats(), d()).toMatchObject({ created: answered, createRequests: answered, ended: answered });
  await waitFor(() => pendingEnds(r.dataDir).length === 0, 5_000, d);
}

describe('admission limits', () => {
  it('MAX_CONCURRENT_CALLS=3, burst of 8: 3 answered and completed, 5 refused with 503 + Retry-After', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    await r.startGateway({ MAX_CONCURRENT_CALLS: '3', LOG_LEVEL: 'info' });
    const { pbxResult, uasResult, d } = await burst(r, 8, 3, 2000);

    expect(pbxResult.exitCode, d()).toBe(0); // every call was either answered (and hung up cleanly) or refused
    expect(uasResult.exitCode, d()).toBe(0); // every admitted call reached Telnyx, was answered and ended by a BYE
    const { answered, refused, retryAfter } = outcomes(pbxResult);
    expect(answered.size, d()).toBe(3);
    expect(refused.size, d()).toBe(5);
    expect(
      [...answered].filter((id) => refused.has(id)),
      d(),
    ).toEqual([]);
    expect(
      retryAfter.every((v) => v !== undefined && Number(v) > 0),
      `Retry-After: ${JSON.stringify(retryAfter)}\n${d()}`,
    ).toBe(true);
    expect(findMessages(uasResult.messages, 'received', 'INVITE ').length, d()).toBe(3);

    const refusals = r.gw.logs.filter((l) => l.msg === 'INVITE refused at admission');
    expect(
      refusals.map((l) => [l.why, l.status]),
      d(),
    ).toEqual(refusals.map(() => ['concurrency', 503]));
    expect(refusals, d()).toHaveLength(5);

    await sessionsEndedOnce(r, answered.size, d);
    // Refused calls have summaries too (route 'rejected'); the admitted ones all completed.
    const admitted = () => r.gw.summaries().filter((s) => s.route !== 'rejected');
    const summaries = await waitFor(() => admitted().length >= 3 && admitted(), 10_000, d);
    expect(
      r.gw
        .summaries()
        .filter((s) => s.route === 'rejected')
        .map((s) => s.endReason),
      d(),
    ).toEqual(Array(5).fill('concurrency'));
    expect(
      summaries.map((s) => [s.route, s.endReason]),
      d(),
    ).toEqual(summaries.map(() => ['translated', 'bye_from_pbx']));
    expect(summaries, d()).toHaveLength(3);

    const rows = callRows(r.dataDir);
    expect(rows, d()).toHaveLength(8);
    expect(
      rows.filter((c) => c.state !== 'ended'),
      d(),
    ).toEqual([]);
    const byReason = (reason: string) => rows.filter((c) => c.end_reason === reason);
    expect(
      byReason('concurrency').map((c) => [c.sip_status, c.route, c.session_id]),
      d(),
    ).toEqual(Array.from({ length: 5 }, () => [503, 'rejected', null]));
    expect(new Set(byReason('concurrency').map((c) => c.call_id)), d()).toEqual(refused);
    expect(new Set(byReason('bye_from_pbx').map((c) => c.call_id)), d()).toEqual(answered);
    expect(
      byReason('bye_from_pbx').every((c) => c.session_end_status === 'ended'),
      d(),
    ).toBe(true);
  });

  it('MAX_CONCURRENT_CALLS=3, 3 simultaneous calls: all answered and completed, none refused', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    await r.startGateway({ MAX_CONCURRENT_CALLS: '3' });
    const { pbxResult, uasResult, d } = await burst(r, 3, 3, 2000);

    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    const { answered, refused } = outcomes(pbxResult);
    expect(answered.size, d()).toBe(3);
    expect(refused.size, d()).toBe(0);
    expect(
      r.gw.logs.filter((l) => l.msg === 'INVITE refused at admission'),
      d(),
    ).toEqual([]);

    await sessionsEndedOnce(r, 3, d);
    const rows = callRows(r.dataDir);
    expect(
      rows.map((c) => [c.state, c.end_reason, c.session_end_status]),
      d(),
    ).toEqual(Array.from({ length: 3 }, () => ['ended', 'bye_from_pbx', 'ended']));
  });
});
