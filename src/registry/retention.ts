/**
 * Registry retention (REGISTRY_RETENTION_DAYS): ended calls older than the retention, with their events, are deleted
 * at start-up and then every hour, so the registry stops growing with the call history.
 *
 * node:sqlite is synchronous: one DELETE of a year of calls would hold the event loop (and every SIP transaction)
 * for seconds. So a pass deletes in small batches, each its own transaction, and lets the event loop run between
 * them (on PostgreSQL, small batches keep each transaction's locks short for the other instances). Never deleted: active calls, calls whose Kallglot session end is still pending, pending_session_ends.
 */
import type { Logger } from '../logger.ts';
import type { PruneCounts, RegistryPort } from './port.ts';

export type { PruneCounts } from './port.ts';

const DAY_MS = 86_400_000;

export interface RetentionOptions {
  registry: Pick<RegistryPort, 'pruneEnded'>;
  /** 0 keeps every call forever. */
  retentionDays: number;
  logger: Logger;
  /** Between passes; default one hour. */
  intervalMs?: number;
  /** Calls (and stray events) deleted per transaction; default 500. */
  batchSize?: number;
  now?: () => number;
  /** After a pass that deleted something (metrics). */
  onPruned?: (counts: PruneCounts) => void;
}

export class RegistryRetention {
  readonly #opts: RetentionOptions;
  readonly #intervalMs: number;
  readonly #batchSize: number;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<PruneCounts> | undefined;
  #stopped = false;
  /** Rows deleted since this process started. */
  readonly totals: PruneCounts = { calls: 0, events: 0 };

  constructor(opts: RetentionOptions) {
    this.#opts = opts;
    this.#intervalMs = opts.intervalMs ?? 3_600_000;
    this.#batchSize = opts.batchSize ?? 500;
  }

  get enabled(): boolean {
    return this.#opts.retentionDays > 0;
  }

  /** A first pass now, then one per interval; the timer never keeps the process alive. */
  start(): void {
    if (!this.enabled) {
      this.#opts.logger.info('registry retention is off (REGISTRY_RETENTION_DAYS=0): ended calls are kept forever');
      return;
    }
    void this.runOnce();
    this.#timer = setInterval(() => void this.runOnce(), this.#intervalMs);
    this.#timer.unref();
  }

  /** One pass, until a batch comes back short. A pass asked for while one runs is that same pass. */
  runOnce(): Promise<PruneCounts> {
    if (!this.enabled) return Promise.resolve({ calls: 0, events: 0 });
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /** No further batch runs once this returns: the registry may be closed right after. */
  stop(): void {
    this.#stopped = true;
    clearInterval(this.#timer);
  }

  async #pass(): Promise<PruneCounts> {
    const { registry, retentionDays, logger } = this.#opts;
    const cutoff = (this.#opts.now ?? Date.now)() - retentionDays * DAY_MS;
    const counts: PruneCounts = { calls: 0, events: 0 };
    const started = performance.now();
    while (!this.#stopped) {
      let batch: PruneCounts;
      try {
        batch = await registry.pruneEnded(cutoff, this.#batchSize);
      } catch (err) {
        // A failed pass leaves the rows for the next one; the calls being served are not affected.
        logger.error({ err }, 'registry retention failed; retrying at the next pass');
        break;
      }
      counts.calls += batch.calls;
      counts.events += batch.events;
      if (batch.calls < this.#batchSize && batch.events < this.#batchSize) break;
      await new Promise<void>((resolve) => setImmediate(resolve)); // SIP and HTTP run between two batches
    }
    if (counts.calls === 0 && counts.events === 0) return counts;
    this.totals.calls += counts.calls;
    this.totals.events += counts.events;
    logger.info(
      {
        prunedCalls: counts.calls,
        prunedEvents: counts.events,
        endedBefore: new Date(cutoff).toISOString(),
        retentionDays,
        ms: Math.round(performance.now() - started),
      },
      'registry retention: pruned ended calls',
    );
    this.#opts.onPruned?.(counts);
    return counts;
  }
}
