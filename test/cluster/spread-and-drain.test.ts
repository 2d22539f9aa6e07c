/**
 * Two gateways behind Kamailio's dispatcher on one shared PostgreSQL registry (rig.ts), in normal operation:
 *  1. calls spread over A and B, every one translated, every Kallglot session ended once;
 *  4. SIGTERM B: B drains (OPTIONS 503), Kamailio takes it out and sends new calls to A only, B's call finishes;
 *  5. both instances start at once on an empty database: the migrations run once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PG_SCHEMA_VERSION } from '../../src/registry/pg-schema.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';
import { HOSTS, INSTANCE_IDS, type ClusterRig, countLogs, startCluster, summaries, waitFor } from './rig.ts';

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

describe('two gateways behind the dispatcher', () => {
  it('spreads calls over A and B; every call is translated and every session ended once', async () => {
    const r = (rig = await startCluster(postgres));
    await Promise.all([r.startGateway('A'), r.startGateway('B')]);
    await r.startDispatcher();
    const calls = 6;
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { calls });
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { calls, rate: 3, durationMs: 800, concurrent: 3 });
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const d = () => r.diag(pbxResult, uasResult);
    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);

    // The summary is logged when the gateway has handled the BYE; its line may reach us after SIPp has exited.
    await waitFor(() => summaries(r.gw('A')).length + summaries(r.gw('B')).length >= calls, 10_000, d);
    const [a, b] = [summaries(r.gw('A')), summaries(r.gw('B'))];
    expect(a.length + b.length, d()).toBe(calls);
    expect(a.length, d()).toBeGreaterThan(0);
    expect(b.length, d()).toBeGreaterThan(0);
    expect(
      [...a, ...b].every((s) => s.route === 'translated' && s.endReason === 'bye_from_pbx'),
      d(),
    ).toBe(true);

    await waitFor(() => r.sandbox.sessions().every((s) => s.endCalls > 0), 10_000, d);
    const sessions = r.sandbox.sessions();
    expect(sessions, d()).toHaveLength(calls);
    expect(
      sessions.map((s) => s.endCalls),
      d(),
    ).toEqual(Array(calls).fill(1));

    const rows = await r.query('SELECT * FROM calls ORDER BY invite_at');
    expect(rows, d()).toHaveLength(calls);
    expect(new Set(rows.map((c) => c.instance_id)), d()).toEqual(new Set([INSTANCE_IDS.A, INSTANCE_IDS.B]));
    await waitFor(
      async () =>
        (await r.query('SELECT * FROM calls')).every((c) => c.state === 'ended' && c.session_end_status === 'ended'),
      10_000,
      d,
    );
    expect(await r.query('SELECT * FROM pending_session_ends'), d()).toEqual([]);
  });

  it('SIGTERM B: it answers OPTIONS 503, Kamailio takes it out, new calls go to A, its own call finishes', async () => {
    const r = (rig = await startCluster(postgres));
    const [, gwB] = await Promise.all([r.startGateway('A'), r.startGateway('B', { DRAIN_TIMEOUT_SEC: '30' })]);
    const dispatcher = await r.startDispatcher();
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { calls: 6 });
    // Two long calls: round robin gives one to each gateway.
    const long = await r.startPbx('uac-invite-200-then-bye.xml', { calls: 2, durationMs: 8000, concurrent: 2 });
    await waitFor(
      () =>
        countLogs(r.gw('A'), 'call answered and bridged') === 1 && countLogs(gwB, 'call answered and bridged') === 1,
      15_000,
      () => r.diag(),
    );

    const logFrom = dispatcher.log().length;
    gwB.signal('SIGTERM');
    await gwB.waitForLog((l) => l.msg === 'shutting down', 5000);
    await dispatcher.waitForLog(new RegExp(`gateway down: sip:${HOSTS.B.replaceAll('.', '\\.')}:`), 10_000, logFrom);
    const invitesAtB = countLogs(gwB, 'new call') + countLogs(gwB, 'INVITE refused at admission');

    const fresh = await r.startPbx('uac-invite-200-then-bye.xml', { calls: 4, durationMs: 300, concurrent: 2 });
    const freshResult = await fresh.done;
    const [longResult, exitCode] = await Promise.all([long.done, gwB.exited]);
    const uasResult = (await Promise.all([uas.stop(), uas.done]))[1];
    const d = () => r.diag(freshResult, longResult, uasResult);
    expect(freshResult.exitCode, d()).toBe(0);
    expect(longResult.exitCode, d()).toBe(0);
    expect(exitCode, d()).toBe(0);
    // Kamailio sent B nothing new once it was down; A took the four new calls.
    expect(countLogs(gwB, 'new call') + countLogs(gwB, 'INVITE refused at admission'), d()).toBe(invitesAtB);
    await waitFor(() => summaries(r.gw('A')).length === 5, 5000, d); // its long call's summary follows the BYE
    // B's call went on during the drain and ended the normal way, before B stopped.
    expect(summaries(gwB), d()).toMatchObject([{ route: 'translated', endReason: 'bye_from_pbx' }]);
    expect(countLogs(gwB, 'drain timeout: hanging up remaining calls'), d()).toBe(0);

    await waitFor(() => r.sandbox.sessions().every((s) => s.endCalls > 0), 10_000, d);
    expect(
      r.sandbox.sessions().map((s) => s.endCalls),
      d(),
    ).toEqual(Array(6).fill(1));
  });

  it('both instances start at once on an empty database: the migrations run once', async () => {
    const r = (rig = await startCluster(postgres));
    const [a, b] = await Promise.all([r.startGateway('A'), r.startGateway('B')]);
    const migrated = [a, b].map((g) => countLogs(g, 'shared registry migrated'));
    expect(
      migrated.sort((x, y) => x - y),
      r.diag(),
    ).toEqual([0, 1]);
    const versions = await r.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.map((v) => v.version)).toEqual(Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1));
    const leases = await r.query<{ instance_id: string }>('SELECT instance_id FROM instances ORDER BY instance_id');
    expect(leases.map((l) => l.instance_id)).toEqual([INSTANCE_IDS.A, INSTANCE_IDS.B]);
    // The registry's password never reaches a log line.
    for (const g of [a, b]) {
      expect(g.rawLogs.some((line) => line.includes('registry-secret'))).toBe(false);
      expect(g.logs.find((l) => l.msg === 'kallglot-sip-gateway started')?.registry).toMatch(
        /^postgres \(127\.0\.0\.1:/,
      );
    }
  });
});
