/**
 * Two gateways on one shared PostgreSQL registry (rig.ts) when something goes wrong, or goes to the other one:
 *  2. kill -9 A during calls: Kamailio sends new calls to B; within INSTANCE_DEAD_AFTER_SEC and one lease interval
 *     B ends every Kallglot session A held, exactly once, and closes their rows (instance_lost); the restarted A
 *     finds nothing left to do. The time from the kill to the last orphaned session ended is measured and printed.
 *  3. a TeXML status webhook for a call A answered, delivered to B, ends the session once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER } from '../e2e/harness.ts';
import type { GatewayProcess } from '../helpers/gateway.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { signHeaders } from '../telnyx/harness.ts';
import {
  type ClusterRig,
  countLogs,
  DEAD_AFTER_SEC,
  INSTANCE_IDS,
  LEASE_INTERVAL_SEC,
  startCluster,
  summaries,
  waitFor,
} from './rig.ts';

let postgres: PostgresServer;
let rig: ClusterRig | undefined;

beforeAll(async () => {
  postgres = await startPostgres();
});
afterAll(async () => {
  await postgres?.stop();
});
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

describe('a shared registry across gateways', () => {
  it('kill -9 A during calls: new calls go to B, and B ends the sessions A held exactly once', async () => {
    const r = (rig = await startCluster(postgres));
    const [gwA, gwB] = await Promise.all([r.startGateway('A'), r.startGateway('B')]);
    await r.startDispatcher();
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { calls: 8, timeoutSec: 90 });
    // Four long calls, two on each gateway (round robin); B's end normally, A's die with A.
    const long = await r.startPbx('uac-invite-200-then-bye.xml', { calls: 4, concurrent: 4, durationMs: 14_000 });
    const answered = (g: GatewayProcess) => countLogs(g, 'call answered and bridged');
    await waitFor(
      () => answered(gwA) === 2 && answered(gwB) === 2,
      15_000,
      () => r.diag(),
    );
    const heldByA = await r.query(`SELECT * FROM calls WHERE instance_id = $1 AND state = 'active'`, [INSTANCE_IDS.A]);
    const sessionsOfA = heldByA.map((c) => c.session_id);
    expect(sessionsOfA, r.diag()).toHaveLength(2);

    const killedAt = Date.now();
    gwA.signal('SIGKILL');
    expect(await gwA.exited).toBe('SIGKILL');

    // New calls succeed through B: the dispatcher fails over from the silent A, then its probes mark A down.
    const fresh = await r.startPbx('uac-invite-200-then-bye.xml', { calls: 4, concurrent: 2, durationMs: 300 });
    const freshResult = await fresh.done;
    expect(freshResult.exitCode, r.diag(freshResult)).toBe(0);

    const ofA = () => r.sandbox.sessions().filter((s) => sessionsOfA.includes(s.id));
    const ended = await waitFor(
      () => (ofA().length === 2 && ofA().every((s) => s.endCalls > 0) ? ofA() : undefined),
      (DEAD_AFTER_SEC + 4 * LEASE_INTERVAL_SEC + 10) * 1000,
      () => r.diag(freshResult),
    );
    const lastEndedMs = Math.max(...ended.map((s) => Date.parse(s.endedAt ?? ''))) - killedAt;
    console.log(
      `kill -9 of A -> last of its ${ended.length} orphaned sessions ended by B: ${lastEndedMs} ms ` +
        `(INSTANCE_DEAD_AFTER_SEC=${DEAD_AFTER_SEC}, REGISTRY_LEASE_INTERVAL_SEC=${LEASE_INTERVAL_SEC})`,
    );
    // Dead after INSTANCE_DEAD_AFTER_SEC without a renewal, found at B's next renewal, plus the end request itself.
    expect(lastEndedMs).toBeLessThanOrEqual((DEAD_AFTER_SEC + 2 * LEASE_INTERVAL_SEC) * 1000 + 1000);
    expect(ended.map((s) => s.endReason)).toEqual(['error', 'error']);
    expect(
      gwB.logs.find((l) => l.msg === 'took over a lost instance'),
      r.diag(),
    ).toMatchObject({ lostInstance: INSTANCE_IDS.A, calls: 2 });

    const closed = await waitFor(async () => {
      const rows = await r.query('SELECT * FROM calls WHERE call_id = ANY($1::text[])', [
        heldByA.map((c) => c.call_id),
      ]);
      return rows.every((c) => c.session_end_status === 'ended') ? rows : undefined;
    }, 10_000);
    for (const row of closed) {
      expect(row).toMatchObject({ state: 'ended', end_reason: 'instance_lost', instance_id: INSTANCE_IDS.A });
    }

    // B's own long calls went on and ended the normal way.
    await long.done;
    await waitFor(
      () => summaries(gwB).filter((s) => (s.durationMs as number) > 10_000).length === 2,
      10_000,
      () => r.diag(),
    );
    expect(summaries(gwB).filter((s) => s.endReason === 'bye_from_pbx')).toHaveLength(6);

    // The restarted A finds nothing left to do.
    const gwA2 = await r.startGateway('A');
    expect(countLogs(gwA2, 'recovered state from a previous run'), r.diag()).toBe(0);
    expect(countLogs(gwA2, 'orphaned call from a previous run closed'), r.diag()).toBe(0);

    // Exactly once, every session of the test, also after a few more lease intervals.
    await new Promise((res) => setTimeout(res, 3 * LEASE_INTERVAL_SEC * 1000));
    await waitFor(
      () => r.sandbox.sessions().every((s) => s.endCalls > 0),
      10_000,
      () => r.diag(),
    );
    expect(r.sandbox.sessions(), r.diag()).toHaveLength(8);
    expect(
      r.sandbox.sessions().map((s) => s.endCalls),
      r.diag(),
    ).toEqual(Array(8).fill(1));
    expect(await r.query(`SELECT * FROM calls WHERE state = 'active'`)).toEqual([]);
    expect(await r.query('SELECT * FROM pending_session_ends')).toEqual([]);
    await uas.stop();
  });

  it('a TeXML status webhook for a call A answered, delivered to B, ends the session once', async () => {
    const r = (rig = await startCluster(postgres));
    const [gwA, gwB] = await Promise.all([r.startGateway('A'), r.startGateway('B')]);
    const callSid = 'v3:cluster-texml-1';
    const webhook = async (gw: GatewayProcess, path: string, fields: Record<string, string>) => {
      const body = new URLSearchParams(fields).toString();
      const res = await fetch(`http://127.0.0.1:${gw.httpPort}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...signHeaders(r.key, body) },
        body,
      });
      return { status: res.status, text: await res.text() };
    };

    const voice = await webhook(gwA, '/webhooks/telnyx/voice', {
      CallSid: callSid,
      From: '+15550001',
      To: TRANSLATED_NUMBER,
    });
    expect(voice.status, voice.text).toBe(200);
    expect(voice.text).toContain('<Stream');
    const [row] = await r.query('SELECT * FROM calls WHERE call_id = $1', [callSid]);
    expect(row).toMatchObject({ kind: 'texml', instance_id: INSTANCE_IDS.A, state: 'active', route: 'translated' });
    const sessionId = row!.session_id!;

    const completed = { CallSid: callSid, CallStatus: 'completed', HangupCause: 'normal_clearing' };
    const atB = await webhook(gwB, '/webhooks/telnyx/status', completed);
    expect(atB.status, atB.text).toBe(200);
    expect(JSON.parse(atB.text)).toEqual({ handled: 'texml.completed', callId: callSid });
    // Telnyx redelivers, to either instance: acknowledged, nothing done twice.
    for (const gw of [gwA, gwB]) {
      const again = await webhook(gw, '/webhooks/telnyx/status', completed);
      expect(JSON.parse(again.text)).toMatchObject({ duplicate: true });
    }

    const session = await waitFor(() => r.sandbox.sessions().find((s) => s.id === sessionId && s.endCalls > 0), 10_000);
    expect(session).toMatchObject({ endReason: 'completed', endCalls: 1 });
    await waitFor(
      async () =>
        (await r.query('SELECT * FROM calls WHERE call_id = $1', [callSid]))[0]?.session_end_status === 'ended',
      10_000,
    );
    const [after] = await r.query('SELECT * FROM calls WHERE call_id = $1', [callSid]);
    expect(after).toMatchObject({ state: 'ended', end_reason: 'normal_clearing', instance_id: INSTANCE_IDS.A });
    expect(countLogs(gwB, 'telnyx call hung up')).toBe(1);
    expect(countLogs(gwA, 'telnyx call hung up')).toBe(0);
    await new Promise((res) => setTimeout(res, 1000));
    expect(r.sandbox.sessions().find((s) => s.id === sessionId)?.endCalls).toBe(1);
    expect(r.sandbox.stats()).toMatchObject({ created: 1, endRequests: 1 });
  });
});
