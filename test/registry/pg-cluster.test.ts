/**
 * What only a shared registry (PostgreSQL) has: migrations safe when instances start at once, instance leases on
 * the database clock, the takeover of a dead instance's calls by exactly one survivor, cross-instance claims (event
 * ids, session ends), and writes that keep their order and survive one bad write. A real PostgreSQL
 * (test/helpers/postgres.ts), one database per test.
 */
import pg from 'pg';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InstanceLease, LeaseHeldError } from '../../src/registry/lease.ts';
import { describeRegistryUrl } from '../../src/registry/open.ts';
import { PgRegistry } from '../../src/registry/pg-registry.ts';
import { PG_SCHEMA_VERSION } from '../../src/registry/pg-schema.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

const logger = pino({ level: 'silent' });
let server: PostgresServer;
const opened: PgRegistry[] = [];
const leases: InstanceLease[] = [];

beforeAll(async () => {
  server = await startPostgres();
}, 30_000);
afterAll(async () => {
  await server?.stop();
});
afterEach(async () => {
  await Promise.all(leases.splice(0).map((l) => l.release()));
  await Promise.all(opened.splice(0).map((r) => r.close()));
});

async function open(url: string, instanceId: string, onError?: (err: unknown) => void): Promise<PgRegistry> {
  const reg = await PgRegistry.open({ url, instanceId, ...(onError ? { onError } : {}) });
  opened.push(reg);
  return reg;
}

/** `resumed` records each resumePending (the instance id) and each resumeUnresolved (`creates:` and its rows). */
function lease(reg: PgRegistry, deadAfterSec = 2, resumed: string[] = []): InstanceLease {
  const l = new InstanceLease({ registry: reg, logger, intervalMs: 100, deadAfterSec });
  l.takeOverWith({
    ender: { resumePending: () => resumed.push(reg.instanceId) },
    creates: {
      resumeUnresolved: async () => {
        const rows = await reg.unresolvedCreates();
        resumed.push(`creates:${rows.map((r) => r.idempotency_key).join(',')}`);
        return rows.length;
      },
    },
  });
  leases.push(l);
  return l;
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('shared registry on PostgreSQL', () => {
  it('migrates once when several instances start at once on an empty database', async () => {
    const url = await server.createDatabase();
    const regs = await Promise.all(['a', 'b', 'c', 'd'].map((id) => open(url, id)));
    const applied = regs.map((r) => r.migrated);
    const all = Array.from({ length: PG_SCHEMA_VERSION }, (_, i) => i + 1);
    expect(applied.filter((v) => v.length > 0)).toEqual([all]);
    const rows = await sql<{ version: number }>(url, 'SELECT version FROM schema_migrations ORDER BY version');
    expect(rows.map((r) => r.version)).toEqual(all);
  });

  it('refuses a schema newer than this gateway', async () => {
    const url = await server.createDatabase();
    await open(url, 'a');
    await sql(url, 'INSERT INTO schema_migrations (version) VALUES ($1)', [PG_SCHEMA_VERSION + 3]);
    await expect(PgRegistry.open({ url, instanceId: 'b' })).rejects.toThrow(/newer than this gateway supports/);
  });

  it('decides between instances: one call row, one event, one session end claim', async () => {
    const url = await server.createDatabase();
    const [a, b] = [await open(url, 'a'), await open(url, 'b')];
    const started = await Promise.all([a.callStarted({ callId: 'x' }), b.callStarted({ callId: 'x' })]);
    expect(started.filter(Boolean)).toHaveLength(1);
    const events = await Promise.all([
      a.addEvent('x', 'call.hangup', null, 'telnyx:evt-1'),
      b.addEvent('x', 'call.hangup', null, 'telnyx:evt-1'),
    ]);
    expect(events.filter(Boolean)).toHaveLength(1);
    const claims = await Promise.all([
      a.addPendingEnd('sess_x', 'x', 'completed', 'telnyx_hangup'),
      b.addPendingEnd('sess_x', 'x', 'completed', 'texml_completed'),
    ]);
    expect(claims.filter(Boolean)).toHaveLength(1);
    const ended = await Promise.all([a.callEnded('x', { reason: 'hangup' }), b.callEnded('x', { reason: 'hangup' })]);
    expect(ended.filter(Boolean)).toHaveLength(1);
  });

  it('keeps a group of writes when one of them fails, and rejects only that one', async () => {
    const url = await server.createDatabase();
    const errors: unknown[] = [];
    const reg = await open(url, 'a', (err) => errors.push(err));
    const ok1 = reg.callStarted({ callId: 'g1' });
    const bad = reg.update('g1', { answerAt: 'not a number' as unknown as number });
    const ok2 = reg.update('g1', { sessionId: 'sess_g1' });
    await expect(bad).rejects.toThrow();
    expect(await ok1).toBe(true);
    await ok2;
    expect(await reg.get('g1')).toMatchObject({ session_id: 'sess_g1', answer_at: null });
    expect(errors).toHaveLength(1);
  });

  it('takes over a dead instance exactly once, however many survivors try at the same time', async () => {
    const url = await server.createDatabase();
    const dead = await open(url, 'dead');
    await lease(dead).acquire();
    for (let i = 0; i < 20; i++) {
      await dead.callStarted({ callId: `d${i}` });
      await dead.update(`d${i}`, { sessionId: `sess_d${i}` });
    }
    const unknown = { callId: 'u1', request: '{}', code: 'deadline_exceeded', failedAt: 1000 };
    await dead.createUnresolved({ idempotencyKey: 'sip-u1', ...unknown });
    await dead.commitNow();
    await sql(url, `UPDATE instances SET lease_at = now() - interval '1 hour' WHERE instance_id = 'dead'`);
    const survivors = await Promise.all(['s1', 's2', 's3'].map((id) => open(url, id)));
    const results = await Promise.all(survivors.map((s) => s.takeOver('dead', 2)));
    const winners = results.filter((r) => r !== undefined);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toHaveLength(20);
    const pending = await sql<{ instance_id: string; n: string }>(
      url,
      'SELECT instance_id, count(*) AS n FROM pending_session_ends GROUP BY instance_id',
    );
    expect(pending).toHaveLength(1);
    expect(Number(pending[0]?.n)).toBe(20);
    const creates = await sql<{ instance_id: string }>(url, 'SELECT instance_id FROM unresolved_creates');
    expect(creates).toEqual([{ instance_id: pending[0]?.instance_id }]);
    expect(await survivors[0]!.active()).toEqual([]);
    expect(await sql(url, `SELECT 1 FROM instances WHERE instance_id = 'dead'`)).toEqual([]);
  });

  it('leases on the database clock: a stale lease is found dead, its calls closed, its restart finds nothing', async () => {
    const url = await server.createDatabase();
    const a = await open(url, 'a');
    const b = await open(url, 'b');
    const resumed: string[] = [];
    const leaseA = lease(a);
    const leaseB = lease(b, 2, resumed);
    await leaseA.acquire();
    await leaseB.acquire();
    await a.callStarted({ callId: 'call-a' });
    await a.update('call-a', { sessionId: 'sess_a' });
    void a.createUnresolved({ idempotencyKey: 'sip-a2', callId: 'a2', request: '{}', code: 'http_504', failedAt: 5 });
    await a.commitNow();
    // B is healthy long enough to act (its own renewals for INSTANCE_DEAD_AFTER_SEC), A stops renewing (kill -9).
    await sql(url, `UPDATE instances SET lease_at = now() - interval '10 seconds' WHERE instance_id = 'a'`);
    await new Promise((r) => setTimeout(r, 2100));
    await leaseB.tick();
    expect(await b.get('call-a')).toMatchObject({ state: 'ended', end_reason: 'instance_lost' });
    expect(await b.pendingEnds()).toMatchObject([{ session_id: 'sess_a', reason: 'error', detail: 'instance_lost' }]);
    expect(resumed).toEqual(['b', 'creates:sip-a2']);
    expect(await b.unresolvedCreates()).toMatchObject([{ idempotency_key: 'sip-a2', instance_id: 'b', call_id: 'a2' }]);
    // A's row is gone: its next renewal says so and takes a fresh lease.
    await leaseA.tick();
    expect(await sql(url, `SELECT 1 FROM instances WHERE instance_id = 'a'`)).toHaveLength(1);
    // The restarted A (new incarnation) has nothing left to recover.
    const a2 = await open(url, 'a');
    expect(await a2.closeOrphans({ endReason: 'gateway_restart', detail: 'gateway_restart' })).toEqual([]);
    expect(await a2.pendingEnds()).toEqual([]);
    expect(await a2.unresolvedCreates()).toEqual([]);
  });

  it('refuses to start a second live process with the same instance id, and lets a restart in after release', async () => {
    const url = await server.createDatabase();
    const first = await open(url, 'same');
    const firstLease = lease(first, 1);
    await firstLease.acquire();
    firstLease.start();
    const second = await open(url, 'same');
    await expect(lease(second, 1).acquire()).rejects.toThrow(LeaseHeldError);
    await firstLease.release();
    const third = await open(url, 'same');
    await lease(third, 1).acquire(); // released: no wait
  });

  it('never names the credentials of REGISTRY_URL', () => {
    expect(describeRegistryUrl('postgres://gw:s3cr3t@db.example:5432/kallglot?sslmode=require')).toBe(
      'db.example:5432/kallglot',
    );
  });
});
