/**
 * Ends Kallglot sessions, exactly once each, retrying with capped backoff until the API confirms (or says the
 * session does not exist). A session that outlives its call costs money, so an end is never dropped on error.
 * (Persisting pending ends across restarts builds on this: see the call registry.)
 */
import type { Logger } from '../logger.ts';
import { isKallglotError } from '../kallglot/errors.ts';
import { END_REASONS, type EndReason } from '../kallglot/types.ts';

export interface SessionEndApi {
  endSession(id: string, reason: EndReason): Promise<unknown>;
}

type Maybe<T> = T | Promise<T>;
type PendingRow = { session_id: string; call_id: string | null; reason: string; detail: string | null };

/**
 * Durable record of ends not yet confirmed (the call registry implements it, synchronously on SQLite, with promises
 * on PostgreSQL). addPendingEnd is also the claim between instances sharing a registry: false means another request
 * holds this end (another instance, or a previous run whose ends resumePending picks up), so it is not attempted here.
 */
export interface PendingEndStore {
  addPendingEnd(
    sessionId: string,
    callId: string | undefined,
    reason: EndReason,
    detail?: string,
  ): Maybe<boolean | undefined>;
  endAttemptFailed(sessionId: string, error: string): Maybe<void>;
  sessionEndConfirmed(sessionId: string, status: 'ended' | 'not_found'): Maybe<void>;
  /** The ends this process must see through (on a shared registry: this instance's). */
  pendingEnds(): Maybe<PendingRow[]>;
}

export interface SessionEnderOptions {
  store?: PendingEndStore;
  baseDelayMs?: number;
  maxDelayMs?: number;
  onEnded?: (sessionId: string, reason: EndReason, outcome: 'ended' | 'not_found') => void;
}

export class SessionEnder {
  readonly #api: SessionEndApi;
  readonly #logger: Logger;
  readonly #opts: Required<Omit<SessionEnderOptions, 'onEnded' | 'store'>> &
    Pick<SessionEnderOptions, 'onEnded' | 'store'>;
  readonly #requested = new Set<string>();
  readonly #inFlight = new Map<string, Promise<void>>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;

  constructor(api: SessionEndApi, logger: Logger, opts: SessionEnderOptions = {}) {
    this.#api = api;
    this.#logger = logger;
    this.#opts = {
      baseDelayMs: opts.baseDelayMs ?? 500,
      maxDelayMs: opts.maxDelayMs ?? 30_000,
      onEnded: opts.onEnded,
      store: opts.store,
    };
  }

  /**
   * Ask for the session to end. Later calls for the same id are ignored: the first reason wins. The request is
   * persisted before the first attempt, so it survives an API outage and a restart (see resumePending).
   */
  end(sessionId: string, reason: EndReason, detail?: string, callId?: string): void {
    if (this.#requested.has(sessionId)) return;
    this.#requested.add(sessionId);
    const claimed = this.#opts.store?.addPendingEnd(sessionId, callId, reason, detail);
    if (claimed instanceof Promise) {
      // A shared registry: the end is attempted once the claim is known. A claim that could not be written is
      // attempted all the same: a session left running costs more than a second end request (Kallglot answers 404).
      const work = claimed.then(
        (ok) => (ok === false ? this.#notOurs(sessionId) : this.#attempt(sessionId, reason, 0)),
        (err: unknown) => {
          this.#logger.error({ err, sessionId }, 'could not persist the session end; ending it anyway');
          return this.#attempt(sessionId, reason, 0);
        },
      );
      this.#logger.debug({ sessionId, reason, detail, callId }, 'ending Kallglot session');
      this.#inFlight.set(sessionId, work);
      return;
    }
    if (claimed === false) {
      this.#notOurs(sessionId);
      return;
    }
    // debug: at info the call's summary says it (one line per call)
    this.#logger.debug({ sessionId, reason, detail, callId }, 'ending Kallglot session');
    this.#inFlight.set(sessionId, this.#attempt(sessionId, reason, 0));
  }

  /** Restart the ends persisted for this instance but never seen confirmed. Returns how many were found. */
  resumePending(): Maybe<number> {
    const rows = this.#opts.store?.pendingEnds() ?? [];
    return rows instanceof Promise ? rows.then((r) => this.#resume(r)) : this.#resume(rows);
  }

  #resume(rows: PendingRow[]): number {
    for (const row of rows) {
      if (this.#requested.has(row.session_id)) continue;
      this.#requested.add(row.session_id);
      this.#logger.info(
        { sessionId: row.session_id, reason: row.reason, callId: row.call_id },
        'resuming pending Kallglot session end',
      );
      this.#inFlight.set(row.session_id, this.#attempt(row.session_id, asEndReason(row.reason), 0));
    }
    return rows.length;
  }

  /** Another request holds this end: forget it here, so a later resumePending() can still take it up. */
  #notOurs(sessionId: string): void {
    this.#requested.delete(sessionId);
    this.#inFlight.delete(sessionId);
    this.#logger.info({ sessionId }, 'Kallglot session end already requested elsewhere: not repeated');
  }

  pending(): number {
    return this.#inFlight.size;
  }

  /** Wait for pending ends (bounded); used on shutdown. */
  async flush(timeoutMs: number): Promise<boolean> {
    const all = Promise.all([...this.#inFlight.values()]).then(() => true);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    const done = await Promise.race([all, timeout]);
    clearTimeout(timer);
    return done;
  }

  /** Shutdown: wait for pending ends (bounded), say when some did not complete (persisted: retried at next start). */
  async shutdown(timeoutMs: number): Promise<void> {
    if (!(await this.flush(timeoutMs))) {
      this.#logger.error({ pending: this.pending() }, 'some Kallglot session ends did not complete before exit');
    }
    this.stop();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async #attempt(sessionId: string, reason: EndReason, n: number): Promise<void> {
    try {
      await this.#api.endSession(sessionId, reason);
      this.#inFlight.delete(sessionId);
      void this.#opts.store?.sessionEndConfirmed(sessionId, 'ended'); // a shared registry reports its own failures
      this.#opts.onEnded?.(sessionId, reason, 'ended');
      return;
    } catch (err) {
      if (isKallglotError(err) && err.status === 404) {
        this.#inFlight.delete(sessionId);
        void this.#opts.store?.sessionEndConfirmed(sessionId, 'not_found');
        this.#opts.onEnded?.(sessionId, reason, 'not_found');
        return;
      }
      void this.#opts.store?.endAttemptFailed(sessionId, err instanceof Error ? err.message : String(err));
      if (this.#stopped) {
        this.#logger.error(
          { sessionId, reason, err },
          'Kallglot session end still pending at shutdown (persisted; retried at next start)',
        );
        this.#inFlight.delete(sessionId);
        return;
      }
      const delay = Math.min(this.#opts.maxDelayMs, this.#opts.baseDelayMs * 2 ** n) * (0.5 + Math.random() / 2);
      this.#logger.warn(
        { sessionId, attempt: n + 1, retryInMs: Math.round(delay), err },
        'ending Kallglot session failed; will retry',
      );
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, delay);
        this.#timers.add(t);
      });
      if (this.#stopped) {
        this.#inFlight.delete(sessionId);
        return;
      }
      return this.#attempt(sessionId, reason, n + 1);
    }
  }
}

/** A persisted reason read back from the registry; one this version does not know is ended as `error`. */
function asEndReason(stored: string): EndReason {
  return (END_REASONS as readonly string[]).includes(stored) ? (stored as EndReason) : 'error';
}
