/**
 * The registry port: what the call logic, the webhooks, the admin API, recovery and retention need from the call
 * registry, whichever adapter serves it.
 *  - SQLite (call-registry.ts, the default): one instance, a file under DATA_DIR, synchronous. Its methods return
 *    plain values (commitNow excepted); a user that awaits them changes nothing but the turn of the event loop it
 *    continues on.
 *  - PostgreSQL (pg-registry.ts, REGISTRY_URL): shared by every instance, asynchronous. Its methods return promises.
 * Users therefore `await` every result (a plain value included) and never hold a registry promise across a SIP step.
 *
 * What every adapter promises (test/registry/port-parity.test.ts runs the same suite against both):
 *  - Order: the writes of one instance apply in the order they were made, and a read sees every write this instance
 *    made before it (read-your-writes). Writes are committed in groups: on SQLite the writes of GROUP_COMMIT_MS (a
 *    few milliseconds, any number of loop turns) share one transaction; on PostgreSQL the writes made while the
 *    previous group was committing. A write is therefore not durable when it returns (SQLite) and a crash can lose
 *    the last group; what survives is always every write up to some point, in order.
 *  - commitNow(): once its result has settled, every write made before the call is durable. Both adapters may
 *    return a promise (SQLite: undefined when nothing is uncommitted), so a caller awaits it; it never rejects (a
 *    failed commit goes to onError). The callers of one loop turn share one commit. It is the rule for anything the
 *    outside world must not learn before it is on disk: the call path waits for it once, for the Kallglot session id,
 *    before the outbound INVITE (what lets recovery end every session that was created); the Telnyx webhooks before
 *    they answer (Telnyx does not redeliver what was answered). No other SIP step waits for the registry.
 *  - Conditional writes decide races between instances: callStarted and addEvent are true only for the first
 *    writer of an id or dedupe key, callEnded only for the first to close an active row, addPendingEnd only for the
 *    first to ask for a session's end (and never once that end is confirmed), createUnresolved only for the first
 *    to record a key, closeOrphans closes each row for one caller only.
 *  - A failed write never throws into a call: the SQLite adapter reports it through onError; a PostgreSQL write
 *    promise rejects (a webhook then answers 500 and Telnyx redelivers) and is reported through onError too.
 */
import type { EndReason } from '../kallglot/types.ts';

/** A value now (SQLite) or later (PostgreSQL). */
export type Maybe<T> = T | Promise<T>;

export interface CallRow {
  call_id: string;
  kind: string;
  pbx_source: string | null;
  from_user: string | null;
  to_user: string | null;
  rule: string | null;
  session_id: string | null;
  route: string | null;
  fallback_reason: string | null;
  telnyx_uri: string | null;
  state: 'active' | 'ended';
  owner: string | null;
  instance_id: string | null;
  invite_at: number;
  answer_at: number | null;
  end_at: number | null;
  end_reason: string | null;
  sip_status: number | null;
  session_end_status: string | null;
  recording_url: string | null;
  recording_status: string | null;
  client_state: string | null;
}

export interface PendingEnd {
  session_id: string;
  call_id: string | null;
  reason: string;
  detail: string | null;
  requested_at: number;
  attempts: number;
  last_error: string | null;
}

export interface NewCall {
  callId: string;
  kind?: 'sip' | 'texml' | 'call_control';
  pbxSource?: string;
  from?: string;
  to?: string;
  rule?: string;
  route?: string;
  clientState?: string;
}

export type CallPatch = Partial<{
  rule: string;
  sessionId: string;
  route: string;
  fallbackReason: string;
  telnyxUri: string;
  answerAt: number;
  recordingUrl: string;
  recordingStatus: string;
}>;

export const PATCH_COLUMNS: Record<keyof CallPatch, string> = {
  rule: 'rule',
  sessionId: 'session_id',
  route: 'route',
  fallbackReason: 'fallback_reason',
  telnyxUri: 'telnyx_uri',
  answerAt: 'answer_at',
  recordingUrl: 'recording_url',
  recordingStatus: 'recording_status',
};

export interface CallEnd {
  reason: string;
  sipStatus?: number;
  route?: string;
  fallbackReason?: string;
  sessionId?: string;
  telnyxUri?: string;
  rule?: string;
}

/** SQL parameter values, in the order both adapters' statements bind them. */
export type SqlValue = string | number | null;

/**
 * The values of a new call row, in the order of both adapters' INSERT: call_id, kind, pbx_source, from_user, to_user,
 * rule, route, owner, instance_id, invite_at, client_state.
 */
export function newCallValues(c: NewCall, owner: string, instanceId: string, now: number): SqlValue[] {
  return [
    c.callId,
    c.kind ?? 'sip',
    c.pbxSource ?? null,
    c.from ?? null,
    c.to ?? null,
    c.rule ?? null,
    c.route ?? null,
    owner,
    instanceId,
    now,
    c.clientState ?? null,
  ];
}

/**
 * The values of a call's end, in the order of both adapters' UPDATE: end_at, end_reason, sip_status, then route,
 * fallback_reason, session_id, telnyx_uri and rule (each kept when absent), and the call_id last.
 */
export function callEndValues(callId: string, end: CallEnd, now: number): SqlValue[] {
  return [
    now,
    end.reason,
    end.sipStatus ?? null,
    end.route ?? null,
    end.fallbackReason ?? null,
    end.sessionId ?? null,
    end.telnyxUri ?? null,
    end.rule ?? null,
    callId,
  ];
}

export interface CallEvent {
  type: string;
  at: number;
  data: unknown;
}

export interface PruneCounts {
  calls: number;
  events: number;
}

/**
 * Calls that died with a process (SIP calls only: TeXML and Call Control calls live at Telnyx and end by webhook).
 * `instanceId` unset: this instance's own previous runs (start-up recovery). Set: another, dead instance (takeover).
 */
export interface OrphanSweep {
  instanceId?: string;
  /** The rows' end_reason (gateway_restart, instance_lost). */
  endReason: string;
  /** The Kallglot end detail of their sessions (reason is always `error`). */
  detail: string;
}

/**
 * A Kallglot create whose outcome is unknown (timeout, reset, 500/502/504), recorded by the CreateResolver
 * (sessions/create-resolver.ts) so that a crash before its resolution does not lose it: recovery, or the takeover
 * of this instance, re-sends the request with its key and ends any session it made.
 */
export interface NewUnresolvedCreate {
  idempotencyKey: string;
  callId?: string;
  /**
   * The create request (CreateSessionInput) as JSON: the body Kallglot was sent and the key, no secret (the API key
   * is a header of the client, never part of the request).
   */
  request: string;
  /** Why its outcome is unknown (the client's error code); the session's end detail is `create_<code>`. */
  code: string;
  failedAt: number;
}

export interface UnresolvedCreateRow {
  idempotency_key: string;
  call_id: string | null;
  request: string;
  code: string;
  instance_id: string;
  failed_at: number;
  /** Re-sends tried so far, over every run. */
  attempts: number;
}

export interface RegistryPort {
  readonly kind: 'sqlite' | 'postgres';
  /** This process run (incarnation). */
  readonly owner: string;
  /** The instance identity (INSTANCE_ID) recorded on every call row. */
  readonly instanceId: string;
  /** Record a new call; false when the id is already known (a duplicate webhook, a retransmission). */
  callStarted(c: NewCall): Maybe<boolean>;
  update(callId: string, patch: CallPatch): Maybe<void>;
  /** Close an active row; false when it was not active (already ended, or unknown). */
  callEnded(callId: string, end: CallEnd): Maybe<boolean>;
  get(callId: string): Maybe<CallRow | undefined>;
  bySession(sessionId: string): Maybe<CallRow | undefined>;
  /** Active calls of every instance. */
  active(): Maybe<CallRow[]>;
  recent(limit?: number): Maybe<CallRow[]>;
  /** Persist a session end to do; false when it is already asked for (or already confirmed): not this caller's. */
  addPendingEnd(sessionId: string, callId: string | undefined, reason: EndReason, detail?: string): Maybe<boolean>;
  /** The session ends this instance must still see through. */
  pendingEnds(): Maybe<PendingEnd[]>;
  endAttemptFailed(sessionId: string, error: string): Maybe<void>;
  sessionEndConfirmed(sessionId: string, status: 'ended' | 'not_found'): Maybe<void>;
  /**
   * Record a create of unknown outcome (group commit: nobody waits for it); false when its key is recorded already
   * (by an earlier run, or another instance).
   */
  createUnresolved(c: NewUnresolvedCreate): Maybe<boolean>;
  /** One more re-send of that create was tried. */
  createAttempted(idempotencyKey: string): Maybe<void>;
  /** That create is settled (its session ended, none made, a later create holds it, or given up): forget it. */
  createSettled(idempotencyKey: string): Maybe<void>;
  /**
   * The unresolved creates this instance must see through, oldest first: on SQLite every row of the file (the
   * DATA_DIR lock makes them this process's, whatever instance id wrote them), on PostgreSQL this instance's,
   * including those taken over from dead instances (closeOrphans, takeOver).
   */
  unresolvedCreates(): Maybe<UnresolvedCreateRow[]>;
  /** Record a webhook/SIP event; a repeated dedupeKey is ignored (Telnyx redelivers). True if new. */
  addEvent(callId: string, type: string, data: unknown, dedupeKey?: string): Maybe<boolean>;
  events(callId: string): Maybe<CallEvent[]>;
  /**
   * Close the active SIP calls of a dead process, queue their sessions' ends (reason error) as this instance's, and
   * take over that process's unconfirmed session ends and unresolved creates, in one transaction. Returns the rows
   * closed by this caller.
   */
  closeOrphans(sweep: OrphanSweep): Maybe<CallRow[]>;
  /** Retention: delete up to `limit` ended calls ended before `cutoff` (with their events), and stray events. */
  pruneEnded(cutoff: number, limit: number): Maybe<PruneCounts>;
  /** Every write so far is durable once this settles (see the contract above); shared by the callers of a turn. */
  commitNow(): Maybe<void>;
  /** Commits everything still open, then releases the database. */
  close(): Maybe<void>;
}
