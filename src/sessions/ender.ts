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

/** Durable record of ends not yet confirmed (the call registry implements it). */
export interface PendingEndStore {
  addPendingEnd(sessionId: string, callId: string | undefined, reason: EndReason, detail?: string): void;
  endAttemptFailed(sessionId: string, error: string): void;
  sessionEndConfirmed(sessionId: string, status: 'ended' | 'not_found'): void;
  pendingEnds(): Array<{ session_id: string; call_id: string | null; reason: string; detail: string | null }>;
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
    this.#opts.store?.addPendingEnd(sessionId, callId, reason, detail);
    this.#logger.info({ sessionId, reason, detail, callId }, 'ending Kallglot session');
    this.#inFlight.set(sessionId, this.#attempt(sessionId, reason, 0));
  }

  /** Restart the ends a previous process persisted but never saw confirmed. Returns how many. */
  resumePending(): number {
    const rows = this.#opts.store?.pendingEnds() ?? [];
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

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  async #attempt(sessionId: string, reason: EndReason, n: number): Promise<void> {
    try {
      await this.#api.endSession(sessionId, reason);
      this.#inFlight.delete(sessionId);
      this.#opts.store?.sessionEndConfirmed(sessionId, 'ended');
      this.#opts.onEnded?.(sessionId, reason, 'ended');
      return;
    } catch (err) {
      if (isKallglotError(err) && err.status === 404) {
        this.#inFlight.delete(sessionId);
        this.#opts.store?.sessionEndConfirmed(sessionId, 'not_found');
        this.#opts.onEnded?.(sessionId, reason, 'not_found');
        return;
      }
      this.#opts.store?.endAttemptFailed(sessionId, err instanceof Error ? err.message : String(err));
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
