/**
 * The shared registry's schema on PostgreSQL (REGISTRY_URL), migrated at start-up.
 *
 * Several gateways start at once after a deploy or a power cut, so migrations run under a session-level advisory
 * lock (pg_advisory_lock): the first instance migrates, the others wait on the lock, then find the schema current
 * and apply nothing. Each migration and its row in schema_migrations commit together, so a migration is applied once
 * or not at all. The tables are those of the SQLite registry (db.ts), column for column, plus what only a shared
 * registry needs: the instance that must see a pending session end through, and one lease row per instance.
 */
import type { Pool } from 'pg';
import { RegistryError } from './db.ts';

/** An arbitrary constant of this product, the key of its migration lock (pg_advisory_lock takes a bigint). */
const MIGRATION_LOCK_KEY = 4_730_127_733;

const MIGRATIONS: string[] = [
  // 1: calls, pending session ends (owned by an instance), call events, instance leases
  `CREATE TABLE calls (
     call_id TEXT PRIMARY KEY,
     kind TEXT NOT NULL DEFAULT 'sip',
     pbx_source TEXT,
     from_user TEXT,
     to_user TEXT,
     rule TEXT,
     session_id TEXT,
     route TEXT,
     fallback_reason TEXT,
     telnyx_uri TEXT,
     state TEXT NOT NULL DEFAULT 'active',
     owner TEXT,
     instance_id TEXT,
     invite_at BIGINT NOT NULL,
     answer_at BIGINT,
     end_at BIGINT,
     end_reason TEXT,
     sip_status INTEGER,
     session_end_status TEXT,
     recording_url TEXT,
     recording_status TEXT,
     client_state TEXT
   );
   CREATE INDEX calls_state_end_at ON calls (state, end_at);
   CREATE INDEX calls_session ON calls (session_id);
   CREATE INDEX calls_active_instance ON calls (instance_id) WHERE state = 'active';
   CREATE TABLE pending_session_ends (
     session_id TEXT PRIMARY KEY,
     call_id TEXT,
     reason TEXT NOT NULL,
     detail TEXT,
     requested_at BIGINT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT,
     instance_id TEXT NOT NULL
   );
   CREATE INDEX pending_session_ends_instance ON pending_session_ends (instance_id);
   CREATE TABLE call_events (
     id BIGSERIAL PRIMARY KEY,
     call_id TEXT NOT NULL,
     type TEXT NOT NULL,
     at BIGINT NOT NULL,
     dedupe_key TEXT UNIQUE,
     data TEXT
   );
   CREATE INDEX call_events_call ON call_events (call_id);
   CREATE INDEX call_events_at ON call_events (at);
   CREATE TABLE instances (
     instance_id TEXT PRIMARY KEY,
     incarnation TEXT NOT NULL,
     host TEXT,
     pid INTEGER,
     started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
     lease_at TIMESTAMPTZ NOT NULL DEFAULT now()
   );`,
  // 2: Kallglot creates whose outcome is unknown, until resolved (sessions/create-resolver.ts), owned by an instance
  // like the pending session ends: its recovery, or the takeover of it, re-sends them with their key
  `CREATE TABLE unresolved_creates (
     idempotency_key TEXT PRIMARY KEY,
     call_id TEXT,
     request TEXT NOT NULL,
     code TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     failed_at BIGINT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX unresolved_creates_instance ON unresolved_creates (instance_id);`,
];

export const PG_SCHEMA_VERSION = MIGRATIONS.length;

/** Brings the schema to this version. Returns the versions applied by this call (none when another did it). */
export async function migratePg(pool: Pool): Promise<number[]> {
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    await client.query(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())',
    );
    const { rows } = await client.query<{ v: number | null }>('SELECT max(version) AS v FROM schema_migrations');
    const current = rows[0]?.v ?? 0;
    if (current > MIGRATIONS.length) {
      throw new RegistryError(
        `shared registry has schema version ${current}, newer than this gateway supports (${MIGRATIONS.length})`,
      );
    }
    for (let v = current; v < MIGRATIONS.length; v++) {
      try {
        await client.query('BEGIN');
        await client.query(MIGRATIONS[v] as string);
        await client.query('INSERT INTO schema_migrations (version) VALUES ($1)', [v + 1]);
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw new RegistryError(`shared registry: migration ${v + 1} failed: ${(err as Error).message}`);
      }
      applied.push(v + 1);
    }
  } finally {
    // Released explicitly: a pooled connection outlives this call, and so would a session-level lock.
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    client.release();
  }
  return applied;
}
