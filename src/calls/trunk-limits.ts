/**
 * Per Telnyx trunk: how many INVITEs a second may go out (maxCallsPerSecond) and how many calls may be up at once
 * (maxConcurrent), enforced before sending. Telnyx answers INVITEs over its CPS limit with `503 CPS Limit reached
 * P05` (and over the channel limit with 403 D1): a call refused there has cost an INVITE, and its fallback INVITE
 * would only double the rate. So every INVITE toward a trunk, translated, fallback and redirected alike, first takes
 * a permit here.
 *
 * CPS: each INVITE uses a token that comes back one second (plus a margin) after it was let through, so no window
 * of one second ever holds more than the limit — however Telnyx aligns its seconds. The 100 ms margin is there
 * because Telnyx counts on arrival: the SIP engine's own send latency (most for an engine's first INVITE, more on a
 * busy machine) and network jitter can bring two INVITEs let through exactly a second apart closer together. It
 * costs nothing below the limit and about a tenth of the rate in a sustained burst at it.
 * Concurrency: a permit is held from the INVITE until the leg fails or, when answered, until its dialog ends.
 *
 * An INVITE that finds no slot waits in line (first come, first served) for at most `maxWaitMs`; when it cannot get
 * one in that time (certain at once for CPS, since returning tokens are known in advance) it is refused: the caller
 * answers 503 without sending anything.
 */
import type { TelnyxTrunk } from '../config/trunks.ts';

export type TrunkLimit = 'cps' | 'concurrency';

/** Held while an INVITE is in flight or its call is up; release() is idempotent. */
export interface TrunkPermit {
  release(): void;
}

export type TrunkTicket =
  | { granted: true; permit: TrunkPermit; waitedMs: number }
  | { granted: false; limit: TrunkLimit; waitedMs: number };

/** What one trunk is doing now, for /metrics. */
export interface TrunkUsage {
  trunk: string;
  /** INVITEs in flight plus answered calls. */
  active: number;
  /** INVITEs waiting for a slot. */
  waiting: number;
  /** INVITEs sent in the last second (CPS window). */
  recent: number;
}

export interface TrunkLimitsOptions {
  trunks: readonly TelnyxTrunk[];
  /** Longest an INVITE waits for a slot before it is refused (default 1000 ms; 0: refused at once). */
  maxWaitMs?: number;
  /** How long after sending a CPS token comes back (default 1000 ms plus a 100 ms margin: see above). */
  windowMs?: number;
  /** Told of every permit given (an INVITE about to be sent) and every refusal: per-trunk counters. */
  onGranted?(trunk: string): void;
  onRefused?(trunk: string, limit: TrunkLimit): void;
}

export const DEFAULT_CPS_WINDOW_MS = 1100;
export const DEFAULT_MAX_WAIT_MS = 1000;

interface Waiter {
  since: number;
  deadline: NodeJS.Timeout | undefined;
  resolve(ticket: TrunkTicket): void;
}

/** The limits of one trunk: a CPS window, a concurrency count and the line of INVITEs waiting for either. */
export class TrunkLimiter {
  readonly name: string;
  readonly #cps: number;
  readonly #maxConcurrent: number;
  readonly #windowMs: number;
  readonly #maxWaitMs: number;
  /** Send times still inside the window, oldest first: one per token in use. */
  #sent: number[] = [];
  #active = 0;
  #queue: Waiter[] = [];
  #tokenTimer: NodeJS.Timeout | undefined;

  constructor(
    trunk: Pick<TelnyxTrunk, 'name' | 'maxCallsPerSecond' | 'maxConcurrent'>,
    windowMs: number,
    maxWaitMs: number,
  ) {
    this.name = trunk.name;
    this.#cps = trunk.maxCallsPerSecond;
    this.#maxConcurrent = trunk.maxConcurrent;
    this.#windowMs = windowMs;
    this.#maxWaitMs = maxWaitMs;
  }

  usage(now = Date.now()): TrunkUsage {
    this.#prune(now);
    return { trunk: this.name, active: this.#active, waiting: this.#queue.length, recent: this.#sent.length };
  }

  /** A permit for one INVITE, at once, after a wait, or a refusal naming the limit that stood in the way. */
  acquire(): Promise<TrunkTicket> {
    const now = Date.now();
    this.#prune(now);
    if (this.#queue.length === 0 && this.#hasSlot()) return Promise.resolve(this.#grant(now, now));
    if (this.#maxWaitMs <= 0) return Promise.resolve({ granted: false, limit: this.#blocking(), waitedMs: 0 });
    // No token can come in time, whatever concurrency does: CPS is what refuses it.
    if (this.#earliestToken(this.#queue.length, now) - now > this.#maxWaitMs)
      return Promise.resolve({ granted: false, limit: 'cps', waitedMs: 0 });
    return new Promise((resolve) => {
      const waiter: Waiter = { since: now, deadline: undefined, resolve };
      waiter.deadline = setTimeout(() => this.#expire(waiter), this.#maxWaitMs);
      this.#queue.push(waiter);
      this.#scheduleToken(now);
    });
  }

  /** Every waiter refused (shutdown): nobody is left holding a promise that never settles. */
  close(): void {
    clearTimeout(this.#tokenTimer);
    for (const w of this.#queue.splice(0)) {
      clearTimeout(w.deadline);
      w.resolve({ granted: false, limit: this.#blocking(), waitedMs: Date.now() - w.since });
    }
  }

  #hasSlot(): boolean {
    const concurrencyOk = this.#maxConcurrent === 0 || this.#active < this.#maxConcurrent;
    return concurrencyOk && (this.#cps === 0 || this.#sent.length < this.#cps);
  }

  /** Which limit holds INVITEs back now: concurrency when it is full, else CPS. */
  #blocking(): TrunkLimit {
    return this.#maxConcurrent > 0 && this.#active >= this.#maxConcurrent ? 'concurrency' : 'cps';
  }

  #prune(now: number): void {
    while (this.#sent.length > 0 && now - (this.#sent[0] as number) >= this.#windowMs) this.#sent.shift();
  }

  /**
   * The earliest time the waiter at `position` in line could get a CPS token (a lower bound: concurrency may delay
   * it more). Tokens free now count as available now; the others return one window after their send; each round of
   * `cps` grants after that costs another window.
   */
  #earliestToken(position: number, now: number): number {
    if (this.#cps === 0) return now;
    const available = [...Array(this.#cps - this.#sent.length).fill(now), ...this.#sent.map((t) => t + this.#windowMs)];
    const round = Math.floor(position / this.#cps);
    return (available[position % this.#cps] as number) + round * this.#windowMs;
  }

  #grant(now: number, since: number): TrunkTicket {
    if (this.#cps > 0) this.#sent.push(now);
    this.#active++;
    let held = true;
    const permit: TrunkPermit = {
      release: () => {
        if (!held) return;
        held = false;
        this.#active--;
        this.#pump();
      },
    };
    return { granted: true, permit, waitedMs: now - since };
  }

  /** Serve the line while slots are free, then wait for the next token if CPS is what holds it back. */
  #pump(): void {
    const now = Date.now();
    this.#prune(now);
    while (this.#queue.length > 0 && this.#hasSlot()) {
      const w = this.#queue.shift() as Waiter;
      clearTimeout(w.deadline);
      w.resolve(this.#grant(now, w.since));
    }
    this.#scheduleToken(now);
  }

  #scheduleToken(now: number): void {
    if (this.#tokenTimer || this.#queue.length === 0 || this.#blocking() === 'concurrency') return;
    const oldest = this.#sent[0];
    if (oldest === undefined) return;
    this.#tokenTimer = setTimeout(
      () => {
        this.#tokenTimer = undefined;
        this.#pump();
      },
      Math.max(0, oldest + this.#windowMs - now),
    );
  }

  #expire(w: Waiter): void {
    const i = this.#queue.indexOf(w);
    if (i < 0) return;
    this.#queue.splice(i, 1);
    w.resolve({ granted: false, limit: this.#blocking(), waitedMs: Date.now() - w.since });
  }
}

/** The limiters of every trunk of the config, by name. */
export class TrunkLimits {
  readonly #limiters = new Map<string, TrunkLimiter>();
  readonly #trunks = new Map<string, TelnyxTrunk>();
  readonly #opts: TrunkLimitsOptions;

  constructor(opts: TrunkLimitsOptions) {
    this.#opts = opts;
    const windowMs = opts.windowMs ?? DEFAULT_CPS_WINDOW_MS;
    const maxWaitMs = opts.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
    for (const t of opts.trunks) {
      this.#trunks.set(t.name, t);
      this.#limiters.set(t.name, new TrunkLimiter(t, windowMs, maxWaitMs));
    }
  }

  /** The trunk of this name; routing refuses unknown `trunk_out` names at load, so one here is a bug. */
  trunk(name: string): TelnyxTrunk {
    const t = this.#trunks.get(name);
    if (!t) throw new Error(`unknown Telnyx trunk "${name}" (known: ${[...this.#trunks.keys()].join(', ')})`);
    return t;
  }

  async acquire(name: string): Promise<TrunkTicket> {
    const limiter = this.#limiters.get(name);
    if (!limiter) throw new Error(`unknown Telnyx trunk "${name}"`);
    const ticket = await limiter.acquire();
    if (ticket.granted) this.#opts.onGranted?.(name);
    else this.#opts.onRefused?.(name, ticket.limit);
    return ticket;
  }

  usage(): TrunkUsage[] {
    const now = Date.now();
    return [...this.#limiters.values()].map((l) => l.usage(now));
  }

  close(): void {
    for (const l of this.#limiters.values()) l.close();
  }
}
