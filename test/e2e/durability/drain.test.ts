/**
 * Durability end to end: graceful shutdown. On SIGTERM the daemon stops admitting calls (503 + Retry-After), lets the
 * calls in progress finish for up to DRAIN_TIMEOUT_SEC, then BYEs whatever is left on both legs, ends every Kallglot
 * session exactly once and exits 0 with nothing left active in the registry.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  TEST_TIMEOUT_MS,
  callRows,
  findMessages,
  headerOf,
  pendingEnds,
  startRig,
  waitForAnswered,
  type DurabilityRig,
} from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

function indexOfLog(r: DurabilityRig, msg: string): number {
  return r.gw.logs.findIndex((l) => l.msg === msg);
}

describe('drain on SIGTERM', () => {
  it('refuses new INVITEs with 503 + Retry-After, lets the call in progress finish, then exits 0', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway({ DRAIN_TIMEOUT_SEC: '10' });
    const uas = await r.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 3000 });
    await waitForAnswered(r);

    gw.signal('SIGTERM');
    await gw.waitForLog((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM');
    const late = await (await r.startPbx('uac-invite-expect-503.xml', { timeoutSec: 10 })).done;
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const code = await gw.exited;
    const d = () => r.diag(pbxResult, uasResult, late);

    expect(late.exitCode, d()).toBe(0);
    const refused = findMessages(late.messages, 'received', 'SIP/2.0 503');
    expect(refused.length, d()).toBeGreaterThanOrEqual(1);
    expect(Number(headerOf(refused[0]!.text, 'Retry-After')), d()).toBeGreaterThan(0);
    expect(
      r.gw.logs.some((l) => l.msg === 'INVITE refused at admission' && l.why === 'draining' && l.status === 503),
      d(),
    ).toBe(true);

    // The call in progress ended the normal way, by the PBX's BYE, and only then did the daemon stop.
    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    expect(findMessages(uasResult.messages, 'received', 'INVITE '), d()).toHaveLength(1); // the late INVITE never left
    expect(code, d()).toBe(0);
    const answered = r.gw.summaries().filter((s) => s.route === 'translated');
    expect(answered, d()).toHaveLength(1);
    expect(answered[0], d()).toMatchObject({ endReason: 'bye_from_pbx', sipStatus: 200 });
    expect(indexOfLog(r, 'drain timeout: hanging up remaining calls'), d()).toBe(-1);
    expect(r.gw.logs.indexOf(answered[0]!), d()).toBeLessThan(indexOfLog(r, 'stopped'));

    const sessions = r.sandbox.sessions();
    expect(sessions, d()).toHaveLength(1);
    expect(sessions[0], d()).toMatchObject({ id: answered[0]!.sessionId, endCalls: 1, endReason: 'agent_hangup' });
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1, createRequests: 1 });

    const rows = callRows(r.dataDir);
    expect(
      rows.filter((c) => c.state !== 'ended'),
      d(),
    ).toEqual([]);
    expect(
      rows.map((c) => String(c.end_reason)).sort((a, b) => a.localeCompare(b)),
      d(),
    ).toEqual(['bye_from_pbx', 'draining']);
    expect(
      rows.find((c) => c.end_reason === 'bye_from_pbx'),
      d(),
    ).toMatchObject({ session_end_status: 'ended', session_id: sessions[0]!.id });
    expect(pendingEnds(r.dataDir), d()).toEqual([]);
  });

  it('DRAIN_TIMEOUT_SEC=1 with a long call: the gateway BYEs both legs, ends the session and exits 0', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway({ DRAIN_TIMEOUT_SEC: '1' });
    // Neither side hangs up (the PBX would talk for 20 s and more): only the gateway's BYEs let them succeed.
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { timeoutSec: 25 });
    const pbx = await r.startPbx('uac-invite-200-expect-bye.xml', { timeoutSec: 25 });
    await waitForAnswered(r);

    gw.signal('SIGTERM');
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const code = await gw.exited;
    const d = () => r.diag(pbxResult, uasResult);

    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    for (const side of [pbxResult, uasResult]) {
      const byes = findMessages(side.messages, 'received', 'BYE ');
      expect(byes.length, d()).toBeGreaterThanOrEqual(1);
      expect(headerOf(byes[0]!.text, 'Reason'), d()).toMatch(/gateway_shutdown/);
    }
    expect(code, d()).toBe(0);
    expect(indexOfLog(r, 'drain timeout: hanging up remaining calls'), d()).toBeGreaterThanOrEqual(0);
    const summaries = r.gw.summaries();
    expect(summaries, d()).toHaveLength(1);
    expect(summaries[0], d()).toMatchObject({ route: 'translated', endReason: 'gateway_shutdown' });

    // The end was confirmed before the daemon exited: the sandbox has it, nothing is left pending.
    const sessions = r.sandbox.sessions();
    expect(sessions, d()).toHaveLength(1);
    expect(sessions[0], d()).toMatchObject({ id: summaries[0]!.sessionId, endCalls: 1, endReason: 'completed' });
    await new Promise((res) => setTimeout(res, 300));
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1, endRequests: 1 });

    const rows = callRows(r.dataDir);
    expect(rows, d()).toHaveLength(1);
    expect(rows[0], d()).toMatchObject({ state: 'ended', end_reason: 'gateway_shutdown', session_end_status: 'ended' });
    expect(pendingEnds(r.dataDir), d()).toEqual([]);
  });
});
