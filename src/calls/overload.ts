/**
 * How loaded the event loop is: admission's overload signals. The daemon is one event loop, so when it saturates every
 * message waits behind the others and every call slows down together.
 *
 * Two measures, both taken by one timer due every `intervalMs`:
 *  - lag (OVERLOAD_LAG_MS): how late the timer fires, smoothed (EWMA, α 0.3) so that one pause (a major GC, a SQLite
 *    checkpoint: 50-100 ms every few seconds even at 10% load) refuses no call, while a loop that stays late does;
 *  - utilization (OVERLOAD_BUSY_PERCENT): the share of time the loop was busy (perf_hooks eventLoopUtilization),
 *    smoothed over about 0.5 s. Lag alone misses saturation over UDP: the kernel buffers the datagrams and libuv
 *    reads at most 32 per turn, so the turns stay short (measured: smoothed lag p50 7 ms, max 30 ms at 400 calls/s
 *    with 10% of the calls failing) while the queue grows outside the process; the busy share reaches 100%.
 *    The window trades two failures (docs/benchmarks.md): over 0.1 s, the bursts of a loop busy 70% on average
 *    refused 1-5% of the calls at half the capacity; over 0.5 s nothing is refused below 90% busy, but a sudden jump
 *    to twice the capacity builds a backlog before the first refusal.
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
  /** Cumulative busy and idle time of the loop, ms (perf_hooks eventLoopUtilization; tests inject their own). */
  loopTimes?: () => { active: number; idle: number };
}

const realSchedule = (fn: () => void, ms: number): { cancel(): void } => {
  const timer = setTimeout(fn, ms);
  timer.unref(); // never what keeps the process alive
  return { cancel: () => clearTimeout(timer) };
};

const realLoopTimes = (): { active: number; idle: number } => performance.eventLoopUtilization();

/** Weight of the newest lateness in the lag: a single late firing moves it by 30%. */
const LAG_WEIGHT = 0.3;
/** Weight of the newest interval in the utilization: about 25 intervals (0.5 s) make up most of it. */
const UTILIZATION_WEIGHT = 0.08;

export class EventLoopLag {
  readonly #intervalMs: number;
  readonly #now: () => number;
  readonly #schedule: NonNullable<LagMonitorOptions['schedule']>;
  readonly #loopTimes: NonNullable<LagMonitorOptions['loopTimes']>;
  #pending: { cancel(): void } | undefined;
  #dueAt = 0;
  #lagMs = 0;
  #utilization = 0;
  #lastTimes = { active: 0, idle: 0 };

  constructor(opts: LagMonitorOptions = {}) {
    this.#intervalMs = opts.intervalMs ?? 20;
    this.#now = opts.now ?? (() => performance.now());
    this.#schedule = opts.schedule ?? realSchedule;
    this.#loopTimes = opts.loopTimes ?? realLoopTimes;
  }

  start(): void {
    if (this.#pending) return;
    this.#lastTimes = this.#loopTimes();
    this.#arm();
  }

  stop(): void {
    this.#pending?.cancel();
    this.#pending = undefined;
    this.#lagMs = 0;
    this.#utilization = 0;
  }

  /** The smoothed lag, ms (0 when stopped). */
  lagMs(): number {
    return this.#lagMs;
  }

  /** The smoothed share of time the loop was busy, 0 to 1 (0 when stopped). */
  utilization(): number {
    return this.#utilization;
  }

  #arm(): void {
    this.#dueAt = this.#now() + this.#intervalMs;
    this.#pending = this.#schedule(() => this.#fired(), this.#intervalMs);
  }

  #fired(): void {
    const late = Math.max(0, this.#now() - this.#dueAt);
    this.#lagMs += LAG_WEIGHT * (late - this.#lagMs);
    const times = this.#loopTimes();
    const active = times.active - this.#lastTimes.active;
    const total = active + times.idle - this.#lastTimes.idle;
    this.#lastTimes = { active: times.active, idle: times.idle };
    if (total > 0) this.#utilization += UTILIZATION_WEIGHT * (active / total - this.#utilization);
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
