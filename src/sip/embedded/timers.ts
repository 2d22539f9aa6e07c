/**
 * RFC 3261 transaction timers (§17, table 4) and a small per-transaction timer set.
 *
 * The timers run on a TimerWheel (timer-wheel.ts: one Node timer for all of them, looked up at call time so vitest
 * fake timers drive it). They keep the process alive while pending, deliberately: a pending retransmission or timeout
 * must fire even if nothing else keeps the event loop alive; every transaction clears its timers when it terminates.
 */
import { TimerWheel, type WheelEntry } from './timer-wheel.ts';

export interface SipTimerBase {
  /** RTT estimate, default 500 ms. */
  T1: number;
  /** Maximum retransmit interval for non-INVITE requests and INVITE responses, default 4 s. */
  T2: number;
  /** Maximum time a message stays in the network, default 5 s. */
  T4: number;
}

export interface SipTimerConfig extends SipTimerBase {
  /** INVITE request retransmit interval (initial), UDP only. */
  A: number;
  /** INVITE transaction timeout. */
  B: number;
  /** Wait time for response retransmissions (INVITE client, UDP). RFC: at least 32 s. */
  D: number;
  /** Non-INVITE request retransmit interval (initial), UDP only. */
  E: number;
  /** Non-INVITE transaction timeout. */
  F: number;
  /** INVITE final response retransmit interval (initial), UDP only. */
  G: number;
  /** Wait time for ACK receipt. */
  H: number;
  /** Wait time for ACK retransmissions (UDP). */
  I: number;
  /** Wait time for non-INVITE request retransmissions (UDP). */
  J: number;
  /** Wait time for response retransmissions (non-INVITE client, UDP). */
  K: number;
  /** RFC 6026: how long an INVITE transaction lingers after a 2xx to absorb retransmissions (both sides). */
  L: number;
  M: number;
}

export const DEFAULT_T1 = 500;
export const DEFAULT_T2 = 4000;
export const DEFAULT_T4 = 5000;

/** Derive the full timer table from T1/T2/T4 (overridable for tests; D may be overridden too). */
export function sipTimers(overrides: Partial<SipTimerBase & { D: number }> = {}): SipTimerConfig {
  const T1 = overrides.T1 ?? DEFAULT_T1;
  const T2 = overrides.T2 ?? DEFAULT_T2;
  const T4 = overrides.T4 ?? DEFAULT_T4;
  return {
    T1,
    T2,
    T4,
    A: T1,
    B: 64 * T1,
    D: overrides.D ?? Math.max(32_000, 64 * T1),
    E: T1,
    F: 64 * T1,
    G: T1,
    H: 64 * T1,
    I: T4,
    J: 64 * T1,
    K: T4,
    L: 64 * T1,
    M: 64 * T1,
  };
}

let defaultWheel: TimerWheel | undefined;

/** The wheel of timer sets created without one (a transaction built outside a TransactionLayer, in tests). */
function sharedWheel(): TimerWheel {
  defaultWheel ??= new TimerWheel();
  return defaultWheel;
}

/**
 * Named one-shot timers owned by one transaction: setting a name again replaces the pending timer, so each pending
 * action has exactly one timer, and clearAll() on termination leaves nothing behind.
 */
export class TimerSet {
  readonly #wheel: TimerWheel;
  readonly #timers = new Map<string, WheelEntry>();

  constructor(wheel: TimerWheel = sharedWheel()) {
    this.#wheel = wheel;
  }

  set(name: string, ms: number, fn: () => void): void {
    this.clear(name);
    const entry = this.#wheel.schedule(ms, () => {
      if (this.#timers.get(name) === entry) this.#timers.delete(name);
      fn();
    });
    this.#timers.set(name, entry);
  }

  clear(name: string): void {
    const entry = this.#timers.get(name);
    if (entry !== undefined) {
      this.#wheel.cancel(entry);
      this.#timers.delete(name);
    }
  }

  has(name: string): boolean {
    return this.#timers.has(name);
  }

  clearAll(): void {
    for (const entry of this.#timers.values()) this.#wheel.cancel(entry);
    this.#timers.clear();
  }

  get size(): number {
    return this.#timers.size;
  }
}
