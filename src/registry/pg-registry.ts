/**
 * The PostgreSQL adapter of the registry port (port.ts), for two or more gateways sharing one registry
 * (REGISTRY_URL). Every instance sees every call; the rows an instance answers for carry its INSTANCE_ID, and so
 * do the session ends it must see through (pending_session_ends.instance_id) and the creates of unknown outcome it
 * must resolve (unresolved_creates.instance_id).
 *
 * Writes go through one ordered, group-committed queue (pg-writes.ts); reads first wait for this instance's queued
 * writes (read-your-writes), then run on the pool. What decides between instances is always one conditional
 * statement: ON CONFLICT DO NOTHING for a new call, an event id or a session end; `state = 'active'` for closing a
 * row; the DELETE of a dead instance's lease row for taking its calls over (takeOver).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import type { EndReason } from '../kallglot/types.ts';
import { type Queryable, WriteQueue } from './pg-writes.ts';
import { migratePg } from './pg-schema.ts';
import {
  type CallEnd,
  type CallEvent,
  type CallPatch,
  type CallRow,
  type NewCall,
  type NewUnresolvedCreate,
  type OrphanSweep,
  PATCH_COLUMNS,
  callEndValues,
  newCallValues,
  type PendingEnd,
  type PruneCounts,
  type RegistryPort,
  type UnresolvedCreateRow,
} from './port.ts';

export interface PgRegistryOptions {
  url: string;
  instanceId: string;
  onError?: (err: unknown) => void;
  /** Connections in the pool (default 10). */
  poolSize?: number;
}

const INT8_OID = 20;
const SETTLED = ['ended', 'not_found'];

export class PgRegistry implements RegistryPort {
  readonly kind = 'postgres' as const;
  readonly owner = randomUUID();
  readonly instanceId: string;
  /** For the lease (lease.ts), which keeps its own short statements on the same pool. */
  readonly pool: pg.Pool;
  readonly #writes: WriteQueue;
  readonly #onError: (err: unknown) => void;
  /** The versions this start-up applied (empty when the schema was current, or another instance migrated it). */
  migrated: number[] = [];
  #closed = false;

  // biome-ignore lint/style/useConsistentMemberAccessibility: a private constructor has no #-form; open() is the only way in
  private constructor(opts: PgRegistryOptions) {
    this.instanceId = opts.instanceId;
    this.#onError = opts.onError ?? ((err) => process.emitWarning(`call registry write failed: ${String(err)}`));
    this.pool = new pg.Pool({
      connectionString: opts.url,
      max: opts.poolSize ?? 10,
      connectionTimeoutMillis: 5000,
      statement_timeout: 10_000,
      application_name: `kallglot-gw ${opts.instanceId}`.slice(0, 63),
      // Epoch milliseconds are BIGINT: read them as numbers, like node:sqlite does.
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8_OID ? Number : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
      },
    });
    // An idle connection the server closes emits 'error' on the pool; unheard, it would end the process.
    this.pool.on('error', (err) => this.#onError(err));
    this.#writes = new WriteQueue(this.pool, this.#onError);
  }

  /** Connects, migrates (under the advisory lock) and returns the registry; a failure is a start-up error. */
  static async open(opts: PgRegistryOptions): Promise<PgRegistry> {
    const registry = new PgRegistry(opts);
    try {
      registry.migrated = await migratePg(registry.pool);
    } catch (err) {
      await registry.pool.end().catch(() => undefined);
      throw err;
    }
    return registry;
  }

  callStarted(c: NewCall, now = Date.now()): Promise<boolean> {
    return this.#write(
      `INSERT INTO calls (call_id, kind, pbx_source, from_user, to_user, rule, route, state, owner, instance_id,
         invite_at, client_state) VALUES ($1, $2, $3, $4, $5, $6, $7, 'active', $8, $9, $10, $11)
       ON CONFLICT (call_id) DO NOTHING`,
      newCallValues(c, this.owner, this.instanceId, now),
    );
  }

  update(callId: string, patch: CallPatch): Promise<void> {
    const keys = (Object.keys(patch) as Array<keyof CallPatch>).filter((k) => patch[k] !== undefined);
    if (keys.length === 0) return Promise.resolve();
    const sets = keys.map((k, i) => `${PATCH_COLUMNS[k]} = $${i + 1}`).join(', ');
    const values = [...keys.map((k) => patch[k]), callId];
    return this.#exec(`UPDATE calls SET ${sets} WHERE call_id = $${keys.length + 1}`, values);
  }

  callEnded(callId: string, end: CallEnd, now = Date.now()): Promise<boolean> {
    return this.#write(
      `UPDATE calls SET state = 'ended', end_at = $1, end_reason = $2, sip_status = $3, route = COALESCE($4, route),
         fallback_reason = COALESCE($5, fallback_reason), session_id = COALESCE($6, session_id),
         telnyx_uri = COALESCE($7, telnyx_uri), rule = COALESCE($8, rule) WHERE call_id = $9 AND state = 'active'`,
      callEndValues(callId, end, now),
    );
  }

  async get(callId: string): Promise<CallRow | undefined> {
    return (await this.#read<CallRow>('SELECT * FROM calls WHERE call_id = $1', [callId]))[0];
  }

  async bySession(sessionId: string): Promise<CallRow | undefined> {
    const sql = 'SELECT * FROM calls WHERE session_id = $1 ORDER BY invite_at DESC LIMIT 1';
    return (await this.#read<CallRow>(sql, [sessionId]))[0];
  }

  active(): Promise<CallRow[]> {
    return this.#read(`SELECT * FROM calls WHERE state = 'active' ORDER BY invite_at`, []);
  }

  recent(limit = 100): Promise<CallRow[]> {
    return this.#read('SELECT * FROM calls ORDER BY invite_at DESC LIMIT $1', [limit]);
  }

  addPendingEnd(
    sessionId: string,
    callId: string | undefined,
    reason: EndReason,
    detail?: string,
    now = Date.now(),
  ): Promise<boolean> {
    return this.#writes.write((c) => this.#claimEnd(c, sessionId, callId ?? null, reason, detail ?? null, now));
  }

  async pendingEnds(): Promise<PendingEnd[]> {
    return this.#read(
      `SELECT session_id, call_id, reason, detail, requested_at, attempts, last_error FROM pending_session_ends
       WHERE instance_id = $1 ORDER BY requested_at`,
      [this.instanceId],
    );
  }

  endAttemptFailed(sessionId: string, error: string): Promise<void> {
    const sql = 'UPDATE pending_session_ends SET attempts = attempts + 1, last_error = $1 WHERE session_id = $2';
    return this.#exec(sql, [error.slice(0, 500), sessionId]);
  }

  sessionEndConfirmed(sessionId: string, status: 'ended' | 'not_found'): Promise<void> {
    return this.#writes.write(async (c) => {
      await c.query('DELETE FROM pending_session_ends WHERE session_id = $1', [sessionId]);
      await c.query('UPDATE calls SET session_end_status = $1 WHERE session_id = $2', [status, sessionId]);
    });
  }

  createUnresolved(c: NewUnresolvedCreate): Promise<boolean> {
    return this.#write(
      `INSERT INTO unresolved_creates (idempotency_key, call_id, request, code, instance_id, failed_at)
       VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (idempotency_key) DO NOTHING`,
      [c.idempotencyKey, c.callId ?? null, c.request, c.code, this.instanceId, c.failedAt],
    );
  }

  createAttempted(idempotencyKey: string): Promise<void> {
    const sql = 'UPDATE unresolved_creates SET attempts = attempts + 1 WHERE idempotency_key = $1';
    return this.#exec(sql, [idempotencyKey]);
  }

  createSettled(idempotencyKey: string): Promise<void> {
    return this.#exec('DELETE FROM unresolved_creates WHERE idempotency_key = $1', [idempotencyKey]);
  }

  /** This instance's, those taken over from dead instances included. */
  unresolvedCreates(): Promise<UnresolvedCreateRow[]> {
    return this.#read('SELECT * FROM unresolved_creates WHERE instance_id = $1 ORDER BY failed_at, idempotency_key', [
      this.instanceId,
    ]);
  }

  addEvent(callId: string, type: string, data: unknown, dedupeKey?: string, now = Date.now()): Promise<boolean> {
    return this.#write(
      `INSERT INTO call_events (call_id, type, at, dedupe_key, data) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (dedupe_key) DO NOTHING`,
      [callId, type, now, dedupeKey ?? null, data === undefined ? null : JSON.stringify(data)],
    );
  }

  async events(callId: string): Promise<CallEvent[]> {
    const rows = await this.#read<{ type: string; at: number; data: string | null }>(
      'SELECT type, at, data FROM call_events WHERE call_id = $1 ORDER BY id',
      [callId],
    );
    return rows.map((e) => ({ type: e.type, at: e.at, data: e.data ? JSON.parse(e.data) : null }));
  }

  /** Recovery of this instance's previous runs (instanceId unset), or of another instance (see takeOver). */
  closeOrphans(sweep: OrphanSweep, now = Date.now()): Promise<CallRow[]> {
    return this.#writes.write((c) => this.#sweep(c, sweep, now));
  }

  /**
   * Takes over a dead instance, at most once across every survivor: the DELETE of its expired lease row decides
   * (a second survivor's DELETE waits on the first's row lock, then finds nothing and does nothing), then, in the
   * same transaction, its active SIP calls are closed and their session ends, with its unconfirmed ones and its
   * unresolved creates, become this instance's. Returns the rows closed, or undefined when the instance was not (or
   * no longer) dead.
   */
  takeOver(deadInstanceId: string, deadAfterSec: number, now = Date.now()): Promise<CallRow[] | undefined> {
    return this.#writes.write(async (c) => {
      const gone = await c.query(
        'DELETE FROM instances WHERE instance_id = $1 AND lease_at < now() - make_interval(secs => $2)',
        [deadInstanceId, deadAfterSec],
      );
      if (gone.rowCount === 0) return undefined;
      const sweep = { instanceId: deadInstanceId, endReason: 'instance_lost', detail: 'instance_lost' };
      return this.#sweep(c, sweep, now);
    });
  }

  pruneEnded(cutoff: number, limit: number): Promise<PruneCounts> {
    if (this.#closed) return Promise.resolve({ calls: 0, events: 0 });
    return this.#writes.write(async (c) => {
      const calls = await c.query(
        `DELETE FROM calls WHERE call_id IN (SELECT call_id FROM calls WHERE state = 'ended' AND end_at < $1
           AND NOT EXISTS (SELECT 1 FROM pending_session_ends p
             WHERE p.call_id = calls.call_id OR p.session_id = calls.session_id)
           ORDER BY end_at LIMIT $2) AND state = 'ended' RETURNING call_id`,
        [cutoff, limit],
      );
      const ids = calls.rows.map((r: { call_id: string }) => r.call_id);
      const owned = await c.query('DELETE FROM call_events WHERE call_id = ANY($1::text[])', [ids]);
      const stray = await c.query(
        `DELETE FROM call_events WHERE id IN (SELECT e.id FROM call_events e WHERE e.at < $1 AND NOT EXISTS (
           SELECT 1 FROM calls WHERE calls.call_id = e.call_id) ORDER BY e.at LIMIT $2)`,
        [cutoff, limit],
      );
      return { calls: ids.length, events: (owned.rowCount ?? 0) + (stray.rowCount ?? 0) };
    });
  }

  /** Resolves once every write made so far is committed: the session id before the outbound INVITE. */
  commitNow(): Promise<void> {
    return this.#writes.settled();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#writes.settled();
    await this.pool.end();
  }

  /** One statement through the write queue; true when it changed a row. */
  #write(text: string, values: unknown[]): Promise<boolean> {
    return this.#writes.write(async (c) => ((await c.query(text, values)).rowCount ?? 0) > 0);
  }

  /** One statement through the write queue, for its effect only. */
  #exec(text: string, values: unknown[]): Promise<void> {
    return this.#writes.write(async (c) => {
      await c.query(text, values);
    });
  }

  async #read<T>(text: string, values: unknown[]): Promise<T[]> {
    await this.#writes.settled();
    return (await this.pool.query(text, values)).rows as T[];
  }

  /** The claim on a session end (port.ts): only the first request, and never once the end is confirmed. */
  async #claimEnd(
    c: Queryable,
    sessionId: string,
    callId: string | null,
    reason: string,
    detail: string | null,
    now: number,
  ): Promise<boolean> {
    const inserted = await c.query(
      `INSERT INTO pending_session_ends (session_id, call_id, reason, detail, requested_at, instance_id)
       SELECT $1::text, $2::text, $3::text, $4::text, $5::bigint, $6::text WHERE NOT EXISTS (
         SELECT 1 FROM calls WHERE session_id = $1::text AND session_end_status = ANY($7::text[]))
       ON CONFLICT (session_id) DO NOTHING`,
      [sessionId, callId, reason, detail, now, this.instanceId, SETTLED],
    );
    if ((inserted.rowCount ?? 0) === 0) return false;
    await c.query(`UPDATE calls SET session_end_status = 'pending' WHERE session_id = $1`, [sessionId]);
    return true;
  }

  async #sweep(c: Queryable, sweep: OrphanSweep, now: number): Promise<CallRow[]> {
    const mine = sweep.instanceId === undefined || sweep.instanceId === this.instanceId;
    // Our own earlier runs: rows of this instance id but another incarnation. Another instance: all its rows.
    const scope = mine ? 'instance_id = $3 AND (owner IS NULL OR owner <> $4)' : 'instance_id = $3';
    const closed = await c.query<{ call_id: string; session_id: string | null; session_end_status: string | null }>(
      `UPDATE calls SET state = 'ended', end_at = $1, end_reason = $2
       WHERE state = 'active' AND kind = 'sip' AND ${scope} RETURNING call_id, session_id, session_end_status`,
      mine ? [now, sweep.endReason, this.instanceId, this.owner] : [now, sweep.endReason, sweep.instanceId],
    );
    for (const row of closed.rows) {
      if (row.session_id && !SETTLED.includes(row.session_end_status ?? '')) {
        await this.#claimEnd(c, row.session_id, row.call_id, 'error', sweep.detail, now);
      }
    }
    if (!mine) {
      const moved = [this.instanceId, sweep.instanceId];
      await c.query('UPDATE pending_session_ends SET instance_id = $1 WHERE instance_id = $2', moved);
      await c.query('UPDATE unresolved_creates SET instance_id = $1 WHERE instance_id = $2', moved);
    }
    if (closed.rows.length === 0) return [];
    const ids = closed.rows.map((r) => r.call_id);
    return (await c.query('SELECT * FROM calls WHERE call_id = ANY($1::text[]) ORDER BY invite_at', [ids])).rows;
  }
}
