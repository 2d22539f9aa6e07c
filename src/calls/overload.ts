/**
 * How far behind the event loop runs: admission's overload signal (OVERLOAD_LAG_MS). The daemon is one event loop, so
 * when it saturates every message waits behind the others and every call slows down together; the loop's lag is the
 * earliest sign of that, before setups start timing out.
 *
 * A timer is due every `intervalMs`; how late it fires is the lag. Between firings, a timer already overdue is lag
 * too: a loop stuck in one long turn is seen by the admission check that runs right after it, not 20 ms later. Only
 * the latest firing counts, so one garbage-collection pause refuses calls for one interval, not for a window.
 * Cheaper than perf_hooks.monitorEventLoopDelay, whose histogram would have to be read and reset on every INVITE.
 */
import { performance } from 'node:perf_hooks';

export interface LagMonitorOptions {
  /** Default 20 ms: fine enough to see a 50 ms lag; 50 timers a second are no load. */
  intervalMs?: number;
  /** Milliseconds, monotonic (tests inject a fake clock). */
  now?: () => number;
  /** Schedules the next check (tests drive it by hand); returns a handle for cancel. */
  schedule?: (fn: () => void, ms: number) => { cancel(): void };
}

const realSchedule = (fn: () => void, ms: number): { cancel(): void } => {
  const timer = setTimeout(fn, ms);
  timer.unref(); // never what keeps the process alive
  return { cancel: () => clearTimeout(timer) };
};

export class EventLoopLag {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #schedule: NonNullable<LagMonitorOptions['schedule']>;
  #pending: { cancel(): void } | undefined;
  #dueAt = 0;
  #lastLagMs = 0;

  constructor(opts: LagMonitorOptions = {}) {
    this.#intervalMs = opts.intervalMs ?? 20;
    this.#now = opts.now ?? (() => performance.now());
    this.#schedule = opts.schedule ?? realSchedule;
  }

  start(): void {
    if (this.#pending) return;
    this.#arm();
  }

  stop(): void {
    this.#pending?.cancel();
    this.#pending = undefined;
    this.#lastLagMs = 0;
  }

  /** The lag now, in ms: the latest check's lateness, or the next check's when it is already overdue by more. */
  lagMs(): number {
    if (!this.#pending) return 0;
    return Math.max(this.#lastLagMs, this.#now() - this.#dueAt);
  }

  #arm(): void {
    this.#dueAt = this.#now() + this.#intervalMs;
    this.#pending = this.#schedule(() => this.#fired(), this.#intervalMs);
  }

  #fired(): void {
    this.#lastLagMs = Math.max(0, this.#now() - this.#dueAt);
    this.#arm();
  }
}

export interface RefusalLogOptions {
  /** Called with the refusals counted by reason since the previous line. */
  write: (counts: Record<string, number>) => void;
  everyMs?: number;
  now?: () => number;
}

/**
 * Overload refusals, logged as one line per interval with counts by reason instead of a line per INVITE: while
 * overloaded, refusing must cost far less than the calls it protects. The metrics count every refusal exactly.
 */
export class RefusalLog {
  readonly #write: RefusalLogOptions['write'];
  readonly #everyMs: number;
  readonly #now: () => number;
  #counts: Record<string, number> = {};
  #nextAt = Number.NEGATIVE_INFINITY;

  constructor(opts: RefusalLogOptions) {
    this.#write = opts.write;
    this.#everyMs = opts.everyMs ?? 10_000;
    this.#now = opts.now ?? (() => performance.now());
  }

  note(why: string): void {
    this.#counts[why] = (this.#counts[why] ?? 0) + 1;
    const now = this.#now();
    if (now < this.#nextAt) return;
    this.#write(this.#counts);
    this.#counts = {};
    this.#nextAt = now + this.#everyMs;
  }
}
