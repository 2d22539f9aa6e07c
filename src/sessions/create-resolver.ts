/**
 * Every path that creates Kallglot sessions creates them through here, so that no session outlives a create that
 * failed on our side only. A create that times out (or loses its connection, or meets a 500/502/504) may still have
 * made the session at Kallglot: the call falls back untranslated as it must, and nobody would ever end that session
 * (billed until Kallglot's 30-minute inactivity cut). So such a create is resolved in the background: the same
 * request is POSTed again with the same Idempotency-Key (Kallglot answers with the session the key made, or makes
 * one), with backoff, until a definitive answer or a bounded time; a session that comes back is ended through the
 * SessionEnder (reason `error`, detail `create_<code>`), which ends each session exactly once.
 *
 * Races, and the rule for each:
 * - A later create with the same key succeeds (Telnyx re-posting a slow TeXML webhook, a PBX re-sending an INVITE
 *   with the same Call-ID) while a resolution is pending: that create now holds the key's session and its caller
 *   ends it (call-session.ts ends a late session after CANCEL the same way); the resolution is dropped.
 * - A resolution gets the session while a create with the same key is in flight: not ended now (that create will
 *   get this very session); tried again later, when the create either holds it (dropped) or failed too (goes on).
 * - A create answers with a session already ended (a resolution ended it before a late retry of the same call came):
 *   refused as `session_ended`, so the caller falls back rather than dial an ended session.
 * - A session ended by its call and by a resolution: the SessionEnder ends each id once; the first reason wins.
 *
 * Crashes: each resolution has a row in the registry (`unresolved_creates`, through the small store below), written
 * when it starts without waiting (the registry's group commit: the call is not held; a kill -9 within those few
 * milliseconds loses it with the call's other last writes) and deleted once settled (`ended`, `none`, `claimed`,
 * `gave_up`). At start-up (registry/recovery.ts) and on the takeover of a dead instance (registry/lease.ts, which
 * first moves its rows to this instance) resumeUnresolved() feeds the rows back: the stored request is re-sent with
 * its key and any session that comes back is ended. Kept for the next start: a `dropped` one (too many pending here:
 * the row costs no memory, this process's bound does not apply to it) and those pending at stop(). The give-up bound
 * counts from the failure, across restarts, but every run tries a row once (Kallglot may have forgotten a key by
 * then: the re-send makes a session, ended at once). The row holds the request as sent: no secret (the API key is a
 * header of the client). Not covered: a crash while the create itself is in flight (recovery.ts, "the one gap").
 */
import type { Logger } from '../logger.ts';
import { KallglotError, isKallglotError } from '../kallglot/errors.ts';
import type { CreateSessionInput, KallglotSession } from '../kallglot/types.ts';
import type { SessionEnder } from './ender.ts';

type Maybe<T> = T | Promise<T>;

/** A resolution as the registry keeps it (its UnresolvedCreateRow). */
export interface StoredCreate {
  idempotency_key: string;
  call_id: string | null;
  /** The CreateSessionInput, as JSON. */
  request: string;
  code: string;
  failed_at: number;
  attempts: number;
}

/** Where resolutions outlive this process: the call registry (its port satisfies this structurally). */
export interface UnresolvedCreateStore {
  createUnresolved(c: {
    idempotencyKey: string;
    callId?: string;
    request: string;
    code: string;
    failedAt: number;
  }): Maybe<unknown>;
  createAttempted(idempotencyKey: string): Maybe<unknown>;
  createSettled(idempotencyKey: string): Maybe<unknown>;
  unresolvedCreates(): Maybe<StoredCreate[]>;
}

export interface CreateResolverApi {
  createSession(
    input: CreateSessionInput,
    opts?: { signal?: AbortSignal; background?: boolean },
  ): Promise<KallglotSession>;
  getSession(id: string): Promise<KallglotSession>;
}

/**
 * How a resolution ended: `ended` (a session came back: handed to the ender, or ended already), `none` (Kallglot said
 * the key made nothing), `claimed` (a later create of the same key holds the session), `gave_up` (no definitive
 * answer within the bound: a session may be left open), `dropped` (too many pending: not tried by this process; its
 * stored row waits for the next start).
 */
export type ResolutionOutcome = 'ended' | 'none' | 'claimed' | 'gave_up' | 'dropped';

export interface CreateResolverOptions {
  /** Wait before the first re-POST; doubles per attempt (with jitter) up to maxDelayMs. */
  firstDelayMs?: number;
  maxDelayMs?: number;
  /** No re-POST starts later than this after the failure (Kallglot ends idle sessions after 30 minutes anyway). */
  giveUpAfterMs?: number;
  /** Resolutions pending at once (memory, and the load of a Kallglot outage); beyond it a new one is dropped. */
  maxPending?: number;
  /** Re-POSTs in flight at once: they share the end/get connection pool with session ends. */
  maxConcurrent?: number;
  onResolved?: (outcome: ResolutionOutcome) => void;
  /** Keeps resolutions across a crash (the file comment); without it they live in this process only. */
  store?: UnresolvedCreateStore;
}

interface Resolution {
  input: CreateSessionInput;
  callId: string | undefined;
  /** Why its outcome is unknown; the end's detail is `create_<code>`. */
  code: string;
  /** When the create failed (the give-up bound counts from it, across restarts). */
  startedAt: number;
  /** Re-sends so far, over every run (the registry row's count). */
  attempts: number;
  /** Re-sends by this process: the backoff, and at least one before giving up. */
  triesHere: number;
  timer: NodeJS.Timeout | undefined;
}

/** Statuses after which another try can tell more: timeout, key in use by a request in progress, rate, outage. */
const TRY_AGAIN_STATUSES = new Set([408, 409, 429, 503]);

export class CreateResolver {
  readonly #api: CreateResolverApi;
  readonly #ender: Pick<SessionEnder, 'end'>;
  readonly #logger: Logger;
  readonly #opts: Required<Omit<CreateResolverOptions, 'onResolved' | 'store'>> &
    Pick<CreateResolverOptions, 'onResolved' | 'store'>;
  /** By idempotency key: one resolution per key. */
  readonly #pending = new Map<string, Resolution>();
  /** Creates in flight for a call, by idempotency key. */
  readonly #live = new Map<string, number>();
  #running = 0;
  #stopped = false;
  /** Cuts the re-POSTs in flight at stop(): a shutdown does not wait for them (the client's close() would). */
  readonly #stopping = new AbortController();

  constructor(
    api: CreateResolverApi,
    ender: Pick<SessionEnder, 'end'>,
    logger: Logger,
    opts: CreateResolverOptions = {},
  ) {
    this.#api = api;
    this.#ender = ender;
    this.#logger = logger;
    this.#opts = {
      firstDelayMs: opts.firstDelayMs ?? 1000,
      maxDelayMs: opts.maxDelayMs ?? 60_000,
      giveUpAfterMs: opts.giveUpAfterMs ?? 15 * 60_000,
      maxPending: opts.maxPending ?? 10_000,
      maxConcurrent: opts.maxConcurrent ?? 8,
      onResolved: opts.onResolved,
      store: opts.store,
    };
  }

  /** The client's createSession; a failure whose outcome is unknown is resolved in the background, then rethrown. */
  async createSession(input: CreateSessionInput, opts: { signal?: AbortSignal } = {}): Promise<KallglotSession> {
    const key = input.idempotencyKey;
    this.#live.set(key, (this.#live.get(key) ?? 0) + 1);
    let session: KallglotSession;
    try {
      session = await this.#api.createSession(input, opts);
    } catch (err) {
      if (isKallglotError(err) && err.outcomeUnknown) this.resolve(input, err.code);
      throw err;
    } finally {
      const left = (this.#live.get(key) ?? 1) - 1;
      if (left > 0) this.#live.set(key, left);
      else this.#live.delete(key);
    }
    // This create holds the key's session now: its caller ends it, a resolution of an earlier create must not.
    this.#claimed(key);
    if (session.status === 'ended') {
      throw new KallglotError(`Kallglot returned session ${session.id} already ended for this request`, {
        code: 'session_ended',
      });
    }
    return session;
  }

  getSession(id: string): Promise<KallglotSession> {
    return this.#api.getSession(id);
  }

  /** Find out whether this create made a session, and end it if so. `code`: why its outcome is unknown. */
  resolve(input: CreateSessionInput, code: string): void {
    const key = input.idempotencyKey;
    if (this.#pending.has(key)) return;
    const failedAt = Date.now();
    const callId = callIdOf(input);
    // Recorded even when not resolved here (stopping, too many pending): the next start resolves it.
    const request = JSON.stringify(input);
    this.#persist('createUnresolved', (s) =>
      s.createUnresolved({ idempotencyKey: key, callId, request, code, failedAt }),
    );
    this.#begin(input, code, failedAt, 0);
  }

  /**
   * Start-up recovery and the takeover of a dead instance: resolve every create the store holds for this instance
   * (those resolving here already excepted). Returns how many were started.
   */
  async resumeUnresolved(): Promise<number> {
    const rows = (await this.#opts.store?.unresolvedCreates()) ?? [];
    let resumed = 0;
    for (const row of rows) {
      if (this.#pending.has(row.idempotency_key)) continue;
      const input = storedRequest(row);
      if (input === undefined) {
        this.#logger.error(
          { idempotencyKey: row.idempotency_key, callId: row.call_id },
          'unreadable Kallglot create of unknown outcome in the registry: forgotten (a session may be left open)',
        );
        this.#persist('createSettled', (s) => s.createSettled(row.idempotency_key));
        this.#opts.onResolved?.('dropped');
        continue;
      }
      if (this.#begin(input, row.code, row.failed_at, row.attempts)) resumed += 1;
    }
    return resumed;
  }

  /** Starts resolving; false when not (stopping, or too many pending: a stored row waits for the next start). */
  #begin(input: CreateSessionInput, code: string, startedAt: number, attempts: number): boolean {
    const key = input.idempotencyKey;
    if (this.#stopped || this.#pending.has(key)) return false;
    const callId = callIdOf(input);
    if (this.#pending.size >= this.#opts.maxPending) {
      this.#logger.error(
        { idempotencyKey: key, callId, pending: this.#pending.size, keptForNextStart: this.#opts.store !== undefined },
        'too many Kallglot creates with an unknown outcome: not resolving this one (a session may be left open)',
      );
      this.#opts.onResolved?.('dropped');
      return false;
    }
    const r: Resolution = { input, callId, code, startedAt, attempts, triesHere: 0, timer: undefined };
    this.#pending.set(key, r);
    // debug: the call already logged its failed create at warn; a session found is logged at warn below
    this.#logger.debug(
      { idempotencyKey: key, callId, code, attempts },
      'Kallglot create failed with an unknown outcome: checking in the background for a session to end',
    );
    this.#schedule(r, this.#backoff(0));
    return true;
  }

  /** Resolutions not settled yet. */
  pending(): number {
    return this.#pending.size;
  }

  /** Stop resolving (shutdown): re-POSTs stop; what is left keeps its row for the next start, and is logged. */
  stop(): void {
    this.#stopped = true;
    this.#stopping.abort();
    for (const r of this.#pending.values()) clearTimeout(r.timer);
    if (this.#pending.size === 0) return;
    this.#logger.error(
      {
        pending: this.#pending.size,
        idempotencyKeys: [...this.#pending.keys()].slice(0, 50),
        keptForNextStart: this.#opts.store !== undefined,
      },
      'stopping with Kallglot creates of unknown outcome unresolved (a session may be left open until resolved)',
    );
  }

  #schedule(r: Resolution, delayMs: number): void {
    if (this.#stopped) return;
    if (r.triesHere > 0 && Date.now() + delayMs - r.startedAt > this.#opts.giveUpAfterMs) {
      this.#logger.error(
        { idempotencyKey: r.input.idempotencyKey, callId: r.callId, attempts: r.attempts },
        'gave up resolving a Kallglot create of unknown outcome (a session may be left open)',
      );
      this.#settle(r, 'gave_up');
      return;
    }
    r.timer = setTimeout(() => void this.#try(r), delayMs);
    r.timer.unref();
  }

  async #try(r: Resolution): Promise<void> {
    r.timer = undefined;
    const key = r.input.idempotencyKey;
    if (this.#pending.get(key) !== r) return;
    // A create of this key in flight decides first; a full re-POST budget waits its turn. Neither counts an attempt.
    if (this.#live.has(key) || this.#running >= this.#opts.maxConcurrent) {
      this.#schedule(r, this.#opts.firstDelayMs);
      return;
    }
    this.#running += 1;
    r.attempts += 1;
    r.triesHere += 1;
    this.#persist('createAttempted', (s) => s.createAttempted(key));
    try {
      const session = await this.#api.createSession(r.input, { background: true, signal: this.#stopping.signal });
      this.#found(r, session);
    } catch (err) {
      this.#failed(r, err);
    } finally {
      this.#running -= 1;
    }
  }

  #found(r: Resolution, session: KallglotSession): void {
    const key = r.input.idempotencyKey;
    if (this.#pending.get(key) !== r) return; // claimed meanwhile by a create of the same key: its caller ends it
    if (this.#live.has(key)) {
      this.#schedule(r, this.#opts.firstDelayMs); // that create will get this session: see what it makes of it
      return;
    }
    const log = { idempotencyKey: key, callId: r.callId, sessionId: session.id, attempts: r.attempts };
    if (session.status !== 'ended') {
      this.#logger.warn(log, 'Kallglot made a session for a create that failed here: ending it');
      // Before the row goes: the ender persists the end first, so a crash in between loses neither.
      this.#ender.end(session.id, 'error', `create_${r.code}`, r.callId);
    } else {
      this.#logger.info(log, 'Kallglot session of a create that failed here was already ended');
    }
    this.#settle(r, 'ended');
  }

  #failed(r: Resolution, err: unknown): void {
    const key = r.input.idempotencyKey;
    if (this.#pending.get(key) !== r) return;
    if (madeNothing(err)) {
      this.#logger.debug(
        { idempotencyKey: key, callId: r.callId, status: err.status, code: err.code },
        'Kallglot create of unknown outcome made no session',
      );
      this.#settle(r, 'none');
      return;
    }
    const retryAfterMs = isKallglotError(err) ? (err.retryAfterMs ?? 0) : 0;
    this.#schedule(r, Math.max(this.#backoff(r.triesHere), retryAfterMs));
  }

  #claimed(key: string): void {
    const r = this.#pending.get(key);
    if (r === undefined) return;
    clearTimeout(r.timer);
    this.#logger.info(
      { idempotencyKey: key, callId: r.callId },
      'Kallglot create of unknown outcome: a later create holds the session',
    );
    this.#settle(r, 'claimed');
  }

  /** Settled for good: forgotten here and in the store. */
  #settle(r: Resolution, outcome: Exclude<ResolutionOutcome, 'dropped'>): void {
    const key = r.input.idempotencyKey;
    this.#pending.delete(key);
    this.#persist('createSettled', (s) => s.createSettled(key));
    this.#opts.onResolved?.(outcome);
  }

  /** A store write: never waited for, never thrown into a call (a shared registry reports its own failures). */
  #persist(what: string, write: (store: UnresolvedCreateStore) => unknown): void {
    const store = this.#opts.store;
    if (store === undefined) return;
    try {
      const done = write(store);
      if (done instanceof Promise) done.catch(() => undefined);
    } catch (err) {
      this.#logger.error({ err, what }, 'call registry write failed');
    }
  }

  #backoff(attempt: number): number {
    const ceiling = Math.min(this.#opts.maxDelayMs, this.#opts.firstDelayMs * 2 ** attempt);
    return ceiling * (0.5 + Math.random() / 2);
  }
}

/**
 * Kallglot answered this key's create with a refusal that says no session exists for it (validation, account,
 * credits, 501): the same request and key can never have made one. Anything without an answer, a server failure
 * (500/502/504), or an answer another try may change (TRY_AGAIN_STATUSES) says nothing.
 */
function madeNothing(err: unknown): err is KallglotError {
  if (!isKallglotError(err) || err.status === undefined || err.outcomeUnknown) return false;
  return err.status >= 400 && !TRY_AGAIN_STATUSES.has(err.status);
}

/** The call the create was for, as the registry knows it (sessionRequest's metadata), for the pending end's row. */
function callIdOf(input: CreateSessionInput): string | undefined {
  const m = input.metadata ?? {};
  return m.sip_call_id ?? m.call_sid ?? m.call_control_id;
}

/** The request a stored row re-sends, or undefined when the row cannot be one (never written so by resolve()). */
function storedRequest(row: StoredCreate): CreateSessionInput | undefined {
  let input: unknown;
  try {
    input = JSON.parse(row.request);
  } catch {
    return undefined;
  }
  const request = input as Partial<CreateSessionInput> | null;
  const usable = typeof request?.mode === 'string' && request.idempotencyKey === row.idempotency_key;
  return usable ? (request as CreateSessionInput) : undefined;
}
