/**
 * The SQLite adapter of the registry port (port.ts), the default: one row per call (SIP, TeXML or Call Control), the
 * queue of Kallglot session ends not yet confirmed and the Kallglot creates of unknown outcome not yet resolved.
 * node:sqlite is synchronous and each write is a small prepared statement in WAL mode.
 *
 * Group commit on a timer: the first write opens a transaction and starts a GROUP_COMMIT_MS timer; every write until
 * it fires (of any number of calls and loop turns) joins that transaction, and the timer commits it once. A translated
 * call writes in about six loop turns (start, session id, Telnyx URI, answer, end with its pending end, end
 * confirmed): committed per turn that was six WAL commits a call; grouped, the calls of a few milliseconds share one,
 * and the pages they all touch (the newest rows of `calls`, its indexes) are written once per group, not per write.
 * Reads run on the same connection, inside the open transaction: they see every write, committed or not.
 *
 * commitNow() is the exception, for writes the outside world must not learn of before they are on disk: the
 * session id before the outbound INVITE (call-writes.ts), a webhook's writes before its answer to Telnyx. It returns
 * a promise that resolves after one COMMIT on the next check phase (setImmediate): every caller of the same loop
 * turn shares that COMMIT, and with it whatever the group holds. close() commits synchronously.
 *
 * What a kill -9 can lose: the open group, at most GROUP_COMMIT_MS of writes. Commits apply the writes in the order
 * they were made, so what survives is always the writes up to some point, as a crash between two per-turn commits
 * left it before, only that point can now lie a few milliseconds earlier. Recovery (recovery.ts) still ends every
 * Kallglot session that was created, because the session id is committed (commitNow) before the INVITE that uses it:
 * a lost answer or end leaves the row 'active' with its session id, which recovery closes (gateway_restart) and whose
 * session it ends; a lost pending end goes with the call's end row, written in the same turn; a lost confirmation
 * only repeats the end (Kallglot answers not_found). The one loss nothing can cover is a crash between Kallglot's
 * create response and that commit, a window this grouping does not widen.
 */
import { randomUUID } from 'node:crypto';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { EndReason } from '../kallglot/types.ts';
import { openDatabase } from './db.ts';
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

export type { CallEnd, CallPatch, CallRow, NewCall, PendingEnd } from './port.ts';

/**
 * How long a group of writes stays open. Long enough that at a busy gateway's rates (100-200 calls/s, about six
 * writing turns a call, so a turn with writes every millisecond or two) one COMMIT carries several calls' writes;
 * short enough that a kill -9 loses only a few milliseconds of state. Nobody waits for it: the call path never waits
 * for these commits, and what must be durable first goes through commitNow(). A constant, not a setting: the bound on
 * what a crash loses is part of the recovery argument above, not an operator's trade-off.
 */
export const GROUP_COMMIT_MS = 5;

export class CallRegistry implements RegistryPort {
  readonly kind = 'sqlite' as const;
  /**
   * This process run (incarnation): rows it owns are live; 'active' rows of another incarnation are orphans of a
   * crash, because the DATA_DIR instance lock (instance-lock.ts) guarantees no other live process writes this file.
   */
  readonly owner = randomUUID();
  /** The instance identity (INSTANCE_ID) recorded on every call row. */
  readonly instanceId: string;
  readonly #db: DatabaseSync;
  readonly #stmts: Statements;
  readonly #updateStmts = new Map<string, StatementSync>();
  readonly #onError: (err: unknown) => void;
  #inTransaction = false;
  #closed = false;
  /** Commits the open group when GROUP_COMMIT_MS have passed since its first write. */
  #groupTimer: NodeJS.Timeout | undefined;
  /** The commit every commitNow() of this loop turn shares (undefined when none is asked for). */
  #sharedCommit: Promise<void> | undefined;
  readonly #commitGroup = (): void => this.#commit();

  constructor(dataDir: string, opts: { onError?: (err: unknown) => void; instanceId?: string } = {}) {
    this.#db = openDatabase(dataDir);
    this.instanceId = opts.instanceId ?? 'local';
    this.#onError = opts.onError ?? ((err) => process.emitWarning(`call registry commit failed: ${String(err)}`));
    this.#stmts = prepareStatements(this.#db);
  }

  /** Record a new call. Returns false when the id is already known (a duplicate webhook, a retransmission). */
  callStarted(c: NewCall, now = Date.now()): boolean {
    this.#begin();
    const r = this.#stmts.insert.run(...newCallValues(c, this.owner, this.instanceId, now));
    return Number(r.changes) > 0;
  }

  update(callId: string, patch: CallPatch): void {
    const keys = (Object.keys(patch) as Array<keyof CallPatch>).filter((k) => patch[k] !== undefined);
    if (keys.length === 0) return;
    const cacheKey = keys.join(',');
    let stmt = this.#updateStmts.get(cacheKey);
    if (!stmt) {
      stmt = this.#db.prepare(
        `UPDATE calls SET ${keys.map((k) => `${PATCH_COLUMNS[k]} = ?`).join(', ')} WHERE call_id = ?`,
      );
      this.#updateStmts.set(cacheKey, stmt);
    }
    this.#begin();
    stmt.run(...keys.map((k) => patch[k] as string | number), callId);
  }

  callEnded(callId: string, end: CallEnd, now = Date.now()): boolean {
    this.#begin();
    const r = this.#stmts.end.run(...callEndValues(callId, end, now));
    return Number(r.changes) > 0;
  }

  get(callId: string): CallRow | undefined {
    return this.#stmts.get.get(callId) as CallRow | undefined;
  }

  bySession(sessionId: string): CallRow | undefined {
    return this.#stmts.bySession.get(sessionId) as CallRow | undefined;
  }

  active(): CallRow[] {
    return this.#stmts.active.all() as unknown as CallRow[];
  }

  recent(limit = 100): CallRow[] {
    return this.#stmts.recent.all(limit) as unknown as CallRow[];
  }

  /** Calls left 'active' by a previous process (crash, kill -9). */
  orphans(): CallRow[] {
    return this.#stmts.orphans.all(this.owner) as unknown as CallRow[];
  }

  addPendingEnd(
    sessionId: string,
    callId: string | undefined,
    reason: EndReason,
    detail?: string,
    now = Date.now(),
  ): boolean {
    this.#begin();
    const r = this.#stmts.addPending.run(sessionId, callId ?? null, reason, detail ?? null, now, sessionId);
    if (Number(r.changes) === 0) return false;
    this.#stmts.endStatus.run('pending', sessionId);
    return true;
  }

  /**
   * Start-up recovery (instanceId unset): every active SIP row of an earlier process, whatever instance id it ran
   * under, because the DATA_DIR lock means no other live process writes this file. In one transaction (the open group).
   */
  closeOrphans(sweep: OrphanSweep): CallRow[] {
    const candidates =
      sweep.instanceId === undefined
        ? this.orphans()
        : (this.#stmts.activeOf.all(sweep.instanceId) as unknown as CallRow[]);
    const closed: CallRow[] = [];
    for (const row of candidates.filter((r) => r.kind === 'sip')) {
      if (row.session_id && row.session_end_status !== 'ended' && row.session_end_status !== 'not_found') {
        this.addPendingEnd(row.session_id, row.call_id, 'error', sweep.detail);
      }
      if (this.callEnded(row.call_id, { reason: sweep.endReason })) closed.push(this.get(row.call_id) ?? row);
    }
    return closed;
  }

  pendingEnds(): PendingEnd[] {
    return this.#stmts.pending.all() as unknown as PendingEnd[];
  }

  endAttemptFailed(sessionId: string, error: string): void {
    this.#begin();
    this.#stmts.attempt.run(error.slice(0, 500), sessionId);
  }

  sessionEndConfirmed(sessionId: string, status: 'ended' | 'not_found'): void {
    this.#begin();
    this.#stmts.donePending.run(sessionId);
    this.#stmts.endStatus.run(status, sessionId);
  }

  createUnresolved(c: NewUnresolvedCreate): boolean {
    this.#begin();
    const r = this.#stmts.addUnresolved.run(
      c.idempotencyKey,
      c.callId ?? null,
      c.request,
      c.code,
      this.instanceId,
      c.failedAt,
    );
    return Number(r.changes) > 0;
  }

  createAttempted(idempotencyKey: string): void {
    this.#begin();
    this.#stmts.unresolvedAttempt.run(idempotencyKey);
  }

  createSettled(idempotencyKey: string): void {
    this.#begin();
    this.#stmts.settleUnresolved.run(idempotencyKey);
  }

  /** Every row, whatever instance id wrote it: the DATA_DIR lock makes them this process's to resolve. */
  unresolvedCreates(): UnresolvedCreateRow[] {
    return this.#stmts.unresolved.all() as unknown as UnresolvedCreateRow[];
  }

  /** Record a webhook/SIP event; a repeated dedupeKey is ignored (Telnyx retries deliveries). Returns true if new. */
  addEvent(callId: string, type: string, data: unknown, dedupeKey?: string, now = Date.now()): boolean {
    this.#begin();
    const r = this.#stmts.event.run(
      callId,
      type,
      now,
      dedupeKey ?? null,
      data === undefined ? null : JSON.stringify(data),
    );
    return Number(r.changes) > 0;
  }

  events(callId: string): CallEvent[] {
    return (this.#stmts.events.all(callId) as Array<{ type: string; at: number; data: string | null }>).map((e) => ({
      type: e.type,
      at: e.at,
      data: e.data ? JSON.parse(e.data) : null,
    }));
  }

  /**
   * Retention (retention.ts): delete up to `limit` ended calls that ended before `cutoff`, with their events, and up
   * to `limit` events older than `cutoff` that belong to no call row. Active calls and calls whose Kallglot session
   * end is still pending keep their rows; pending_session_ends is never touched. Commits before it returns.
   */
  pruneEnded(cutoff: number, limit: number): PruneCounts {
    if (this.#closed) return { calls: 0, events: 0 };
    this.#begin();
    const ids = this.#stmts.prunable.all(cutoff, limit) as Array<{ call_id: string }>;
    let events = 0;
    for (const { call_id } of ids) {
      events += Number(this.#stmts.deleteEvents.run(call_id).changes);
      this.#stmts.deleteEnded.run(call_id);
    }
    events += Number(this.#stmts.pruneStrayEvents.run(cutoff, limit).changes);
    this.#commit();
    return { calls: ids.length, events };
  }

  /**
   * Makes every write so far durable before the caller goes on: resolves after one COMMIT on the next check phase
   * (setImmediate), shared by every commitNow() of this loop turn; undefined when nothing is uncommitted. Never
   * rejects: a failed COMMIT is reported through onError (and its writes are lost, as they would be on a crash).
   */
  commitNow(): Promise<void> | undefined {
    if (!this.#inTransaction) return this.#sharedCommit;
    this.#sharedCommit ??= new Promise<void>((resolve) => {
      setImmediate(() => {
        this.#sharedCommit = undefined;
        this.#commit();
        resolve();
      });
    });
    return this.#sharedCommit;
  }

  close(): void {
    if (this.#closed) return;
    this.#commit();
    this.#closed = true;
    this.#db.close();
  }

  #begin(): void {
    if (this.#inTransaction || this.#closed) return;
    this.#db.exec('BEGIN');
    this.#inTransaction = true;
    this.#groupTimer = setTimeout(this.#commitGroup, GROUP_COMMIT_MS);
  }

  /** Commits the open group now (the timer, commitNow's shared commit, retention, close). */
  #commit(): void {
    clearTimeout(this.#groupTimer);
    this.#groupTimer = undefined;
    if (!this.#inTransaction) return;
    this.#inTransaction = false;
    try {
      this.#db.exec('COMMIT');
    } catch (err) {
      try {
        this.#db.exec('ROLLBACK');
      } catch {
        // the failed COMMIT already ended the transaction
      }
      this.#onError(err);
    }
  }
}

/** Every fixed statement of the registry, prepared once; the type keeps each name checked at its use. */
function prepareStatements(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    insert: p(`INSERT INTO calls (call_id, kind, pbx_source, from_user, to_user, rule, route, state, owner, instance_id,
               invite_at, client_state)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?, ?)
               ON CONFLICT(call_id) DO NOTHING`),
    end: p(`UPDATE calls SET state = 'ended', end_at = ?, end_reason = ?, sip_status = ?, route = COALESCE(?, route),
               fallback_reason = COALESCE(?, fallback_reason), session_id = COALESCE(?, session_id),
               telnyx_uri = COALESCE(?, telnyx_uri), rule = COALESCE(?, rule) WHERE call_id = ? AND state = 'active'`),
    get: p('SELECT * FROM calls WHERE call_id = ?'),
    bySession: p('SELECT * FROM calls WHERE session_id = ? ORDER BY invite_at DESC LIMIT 1'),
    active: p(`SELECT * FROM calls WHERE state = 'active' ORDER BY invite_at`),
    orphans: p(`SELECT * FROM calls WHERE state = 'active' AND (owner IS NULL OR owner <> ?)`),
    activeOf: p(`SELECT * FROM calls WHERE state = 'active' AND instance_id = ?`),
    recent: p('SELECT * FROM calls ORDER BY invite_at DESC LIMIT ?'),
    // Not once the end is confirmed: a late second request (another webhook) must not end the session again.
    addPending: p(`INSERT INTO pending_session_ends (session_id, call_id, reason, detail, requested_at)
                   SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM calls WHERE session_id = ?
                     AND session_end_status IN ('ended', 'not_found'))
                   ON CONFLICT(session_id) DO NOTHING`),
    pending: p('SELECT * FROM pending_session_ends ORDER BY requested_at'),
    attempt: p('UPDATE pending_session_ends SET attempts = attempts + 1, last_error = ? WHERE session_id = ?'),
    donePending: p('DELETE FROM pending_session_ends WHERE session_id = ?'),
    endStatus: p('UPDATE calls SET session_end_status = ? WHERE session_id = ?'),
    addUnresolved: p(`INSERT INTO unresolved_creates (idempotency_key, call_id, request, code, instance_id, failed_at)
                      VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(idempotency_key) DO NOTHING`),
    unresolvedAttempt: p('UPDATE unresolved_creates SET attempts = attempts + 1 WHERE idempotency_key = ?'),
    settleUnresolved: p('DELETE FROM unresolved_creates WHERE idempotency_key = ?'),
    unresolved: p('SELECT * FROM unresolved_creates ORDER BY failed_at, idempotency_key'),
    event: p(
      `INSERT INTO call_events (call_id, type, at, dedupe_key, data) VALUES (?, ?, ?, ?, ?) ON CONFLICT(dedupe_key) DO NOTHING`,
    ),
    events: p('SELECT type, at, data FROM call_events WHERE call_id = ? ORDER BY id'),
    prunable: p(`SELECT call_id FROM calls WHERE state = 'ended' AND end_at < ? AND NOT EXISTS (
                 SELECT 1 FROM pending_session_ends p WHERE p.call_id = calls.call_id OR p.session_id = calls.session_id)
               ORDER BY end_at LIMIT ?`),
    deleteEvents: p('DELETE FROM call_events WHERE call_id = ?'),
    deleteEnded: p(`DELETE FROM calls WHERE call_id = ? AND state = 'ended'`),
    pruneStrayEvents:
      p(`DELETE FROM call_events WHERE id IN (SELECT e.id FROM call_events e WHERE e.at < ? AND NOT EXISTS (
                         SELECT 1 FROM calls c WHERE c.call_id = e.call_id) ORDER BY e.at LIMIT ?)`),
  };
}

type Statements = ReturnType<typeof prepareStatements>;
