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
 * Crash gap: resolutions live in this process only. A crash (or a stop) between a create failing ambiguously and its
 * resolution leaves a possible session unknown to the registry, which has no row for a create whose outcome is
 * unknown. Proposal (registry owner): a table `unresolved_creates (idempotency_key PRIMARY KEY, call_id, request
 * JSON, instance_id, failed_at, attempts)`, inserted by `track()` (group commit, no wait: the call is not held) and
 * deleted once settled; at start-up (and on takeover of a dead instance) recovery feeds the rows back to
 * `resolve()`, which re-POSTs the stored request with its key and ends any session, then deletes the row. `stop()`
 * logs what it leaves behind until then.
 */
import type { Logger } from '../logger.ts';
import { KallglotError, isKallglotError } from '../kallglot/errors.ts';
import type { CreateSessionInput, KallglotSession } from '../kallglot/types.ts';
import type { SessionEnder } from './ender.ts';

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
 * answer within the bound: a session may be left open), `dropped` (too many pending: never tried).
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
}

interface Resolution {
  input: CreateSessionInput;
  callId: string | undefined;
  /** The end's detail: `create_<code of the failure>`. */
  detail: string;
  startedAt: number;
  attempts: number;
  timer: NodeJS.Timeout | undefined;
}

/** Statuses after which another try can tell more: timeout, key in use by a request in progress, rate, outage. */
const TRY_AGAIN_STATUSES = new Set([408, 409, 429, 503]);

export class CreateResolver {
  readonly #api: CreateResolverApi;
  readonly #ender: Pick<SessionEnder, 'end'>;
  readonly #logger: Logger;
  readonly #opts: Required<Omit<CreateResolverOptions, 'onResolved'>> & Pick<CreateResolverOptions, 'onResolved'>;
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
    if (this.#stopped || this.#pending.has(key)) return;
    const callId = callIdOf(input);
    if (this.#pending.size >= this.#opts.maxPending) {
      this.#logger.error(
        { idempotencyKey: key, callId, pending: this.#pending.size },
        'too many Kallglot creates with an unknown outcome: not resolving this one (a session may be left open)',
      );
      this.#opts.onResolved?.('dropped');
      return;
    }
    const r: Resolution = {
      input,
      callId,
      detail: `create_${code}`,
      startedAt: Date.now(),
      attempts: 0,
      timer: undefined,
    };
    this.#pending.set(key, r);
    // debug: the call already logged its failed create at warn; a session found is logged at warn below
    this.#logger.debug(
      { idempotencyKey: key, callId, code },
      'Kallglot create failed with an unknown outcome: checking in the background for a session to end',
    );
    this.#schedule(r, this.#backoff(0));
  }

  /** Resolutions not settled yet. */
  pending(): number {
    return this.#pending.size;
  }

  /** Stop resolving (shutdown): re-POSTs stop, what is left is logged (the crash gap of the file comment). */
  stop(): void {
    this.#stopped = true;
    this.#stopping.abort();
    for (const r of this.#pending.values()) clearTimeout(r.timer);
    if (this.#pending.size > 0) {
      this.#logger.error(
        { pending: this.#pending.size, idempotencyKeys: [...this.#pending.keys()].slice(0, 50) },
        'stopping with Kallglot creates of unknown outcome unresolved (a session may be left open)',
      );
    }
  }

  #schedule(r: Resolution, delayMs: number): void {
    if (this.#stopped) return;
    if (Date.now() + delayMs - r.startedAt > this.#opts.giveUpAfterMs) {
      this.#pending.delete(r.input.idempotencyKey);
      this.#logger.error(
        { idempotencyKey: r.input.idempotencyKey, callId: r.callId, attempts: r.attempts },
        'gave up resolving a Kallglot create of unknown outcome (a session may be left open)',
      );
      this.#opts.onResolved?.('gave_up');
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
    this.#pending.delete(key);
    const log = { idempotencyKey: key, callId: r.callId, sessionId: session.id, attempts: r.attempts };
    if (session.status !== 'ended') {
      this.#logger.warn(log, 'Kallglot made a session for a create that failed here: ending it');
      this.#ender.end(session.id, 'error', r.detail, r.callId);
    } else {
      this.#logger.info(log, 'Kallglot session of a create that failed here was already ended');
    }
    this.#opts.onResolved?.('ended');
  }

  #failed(r: Resolution, err: unknown): void {
    const key = r.input.idempotencyKey;
    if (this.#pending.get(key) !== r) return;
    if (madeNothing(err)) {
      this.#pending.delete(key);
      this.#logger.debug(
        { idempotencyKey: key, callId: r.callId, status: err.status, code: err.code },
        'Kallglot create of unknown outcome made no session',
      );
      this.#opts.onResolved?.('none');
      return;
    }
    const retryAfterMs = isKallglotError(err) ? (err.retryAfterMs ?? 0) : 0;
    this.#schedule(r, Math.max(this.#backoff(r.attempts), retryAfterMs));
  }

  #claimed(key: string): void {
    const r = this.#pending.get(key);
    if (r === undefined) return;
    clearTimeout(r.timer);
    this.#pending.delete(key);
    this.#logger.info(
      { idempotencyKey: key, callId: r.callId },
      'Kallglot create of unknown outcome: a later create holds the session',
    );
    this.#opts.onResolved?.('claimed');
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
