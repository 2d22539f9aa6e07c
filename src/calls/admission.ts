/**
 * Admission: the checks an INVITE passes before any work is done for it (no Kallglot request, no outbound leg).
 * Order: draining → source allowlist → overload (in-flight setups, event-loop lag and utilization) → concurrent
 * calls → calls per second. Kept apart from CallSession so the session only ever sees calls it is allowed to serve.
 */
import net from 'node:net';

export type AdmissionResult =
  | { admitted: true }
  | {
      admitted: false;
      status: number;
      reason: string;
      retryAfterSec?: number;
      why: 'draining' | 'source_not_allowed' | OverloadReason | 'concurrency' | 'rate';
    };

/**
 * The limits that follow the actual load rather than a static count: past them a call would only slow down every
 * call already admitted, so it is refused at once (503, Retry-After) instead.
 */
export type OverloadReason = 'inflight_setups' | 'event_loop_lag' | 'event_loop_busy';

/** A refusal for overload: 503 with Retry-After. */
export type OverloadRefusal = Extract<AdmissionResult, { admitted: false }> & { why: OverloadReason };

const OVERLOAD_REASONS: ReadonlySet<string> = new Set<OverloadReason>([
  'event_loop_lag',
  'event_loop_busy',
  'inflight_setups',
]);

/** Whether a refusal is one of the overload refusals (the ones answered statelessly, counted, not logged one by one). */
export function isOverloadRefusal(verdict: Extract<AdmissionResult, { admitted: false }>): verdict is OverloadRefusal {
  return OVERLOAD_REASONS.has(verdict.why);
}

export interface OverloadLimits {
  /** Refuse while the event loop lags more than this (ms); 0: never. */
  maxLagMs: number;
  /** The current lag in ms (EventLoopLag.lagMs in the daemon; a stub in tests). */
  lagMs: () => number;
  /** Refuse while the event loop is busy more than this share of the time (0 to 1); 0: never. */
  maxUtilization: number;
  /** The current utilization, 0 to 1 (EventLoopLag.utilization in the daemon; a stub in tests). */
  utilization: () => number;
  /** Refuse while this many admitted calls are not yet answered or failed; 0: no bound. */
  maxInflightSetups: number;
}

export interface AdmissionOptions {
  allowedSources: string[];
  maxConcurrent: number;
  maxCallsPerSecond: number;
  /** Per PBX source address; 0 = no per-source limit. One looping PBX must not starve the others. */
  maxConcurrentPerSource?: number;
  maxCallsPerSecondPerSource?: number;
  overload?: OverloadLimits;
}

/** Sliding one-second window of admission times. */
class RateWindow {
  #times: number[] = [];
  /** True (and counted) when another call fits within `limit` per second. */
  tryTake(limit: number, now: number): boolean {
    while (this.#times.length > 0 && now - this.#times[0] >= 1000) this.#times.shift();
    if (this.#times.length >= limit) return false;
    this.#times.push(now);
    return true;
  }
  get empty(): boolean {
    return this.#times.length === 0;
  }
}

export function toBlockList(cidrs: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of cidrs) {
    const [ip = '', bits] = entry.split('/');
    const type = net.isIPv6(ip) ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(ip, type);
    else list.addSubnet(ip, Number(bits), type);
  }
  return list;
}

export function normaliseIp(ip: string): { ip: string; type: 'ipv4' | 'ipv6' } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return { ip: mapped[1], type: 'ipv4' };
  return { ip, type: net.isIPv6(ip) ? 'ipv6' : 'ipv4' };
}

export class Admission {
  readonly #allow: net.BlockList;
  readonly #opts: AdmissionOptions;
  #active = 0;
  #inflight = 0;
  readonly #rate = new RateWindow();
  readonly #perSource = new Map<string, { active: number; rate: RateWindow }>();
  #isDraining = false;

  constructor(opts: AdmissionOptions) {
    this.#opts = opts;
    this.#allow = toBlockList(opts.allowedSources);
  }

  get activeCalls(): number {
    return this.#active;
  }

  /** Admitted calls not yet answered or failed (setupEnded() not called yet). */
  get inflightSetups(): number {
    return this.#inflight;
  }

  /** An admitted call was answered or failed: it no longer counts against maxInflightSetups. Once per call. */
  setupEnded(): void {
    if (this.#inflight > 0) this.#inflight--;
  }

  get draining(): boolean {
    return this.#isDraining;
  }

  startDraining(): void {
    this.#isDraining = true;
  }

  sourceAllowed(ip: string): boolean {
    const { ip: addr, type } = normaliseIp(ip);
    return this.#allow.check(addr, type);
  }

  /**
   * The overload refusal admit() would give an INVITE from `sourceIp` right now, counting nothing: for the engine's
   * stateless screen. Undefined when it would not be refused for overload, including while draining or for a source
   * not allowed: those keep their own answers (503 draining, 403), which admit() gives.
   */
  overloadRefusal(sourceIp: string): OverloadRefusal | undefined {
    if (this.#isDraining || !this.sourceAllowed(sourceIp)) return undefined;
    return this.#overloaded();
  }

  /** Check an INVITE; on success the call counts as active until `release()`. */
  admit(sourceIp: string, now = Date.now()): AdmissionResult {
    if (this.#isDraining)
      return {
        admitted: false,
        status: 503,
        reason: 'Service Unavailable (draining)',
        retryAfterSec: 30,
        why: 'draining',
      };
    if (!this.sourceAllowed(sourceIp))
      return { admitted: false, status: 403, reason: 'Forbidden', why: 'source_not_allowed' };
    const overloaded = this.#overloaded();
    if (overloaded) return overloaded;
    const src = this.#perSource.get(sourceIp) ?? { active: 0, rate: new RateWindow() };
    const perSourceMax = this.#opts.maxConcurrentPerSource ?? 0;
    if (
      (this.#opts.maxConcurrent > 0 && this.#active >= this.#opts.maxConcurrent) ||
      (perSourceMax > 0 && src.active >= perSourceMax)
    ) {
      return {
        admitted: false,
        status: 503,
        reason: 'Service Unavailable (call limit)',
        retryAfterSec: 5,
        why: 'concurrency',
      };
    }
    const perSourceRate = this.#opts.maxCallsPerSecondPerSource ?? 0;
    if (
      (perSourceRate > 0 && !src.rate.tryTake(perSourceRate, now)) ||
      (this.#opts.maxCallsPerSecond > 0 && !this.#rate.tryTake(this.#opts.maxCallsPerSecond, now))
    ) {
      return {
        admitted: false,
        status: 503,
        reason: 'Service Unavailable (rate limit)',
        retryAfterSec: 1,
        why: 'rate',
      };
    }
    this.#active++;
    this.#inflight++;
    src.active++;
    this.#perSource.set(sourceIp, src);
    return { admitted: true };
  }

  /**
   * Retry-After 1: a proxy in front (RFC 3263 failover) takes the gateway out of rotation for as long as it says, and
   * an overload passes in seconds; a longer pause would send away the calls we could serve a second later.
   */
  #overloaded(): OverloadRefusal | undefined {
    const o = this.#opts.overload;
    if (!o) return undefined;
    const busy = (why: OverloadReason) =>
      ({ admitted: false, status: 503, reason: 'Service Unavailable (overloaded)', retryAfterSec: 1, why }) as const;
    if (o.maxInflightSetups > 0 && this.#inflight >= o.maxInflightSetups) return busy('inflight_setups');
    if (o.maxLagMs > 0 && o.lagMs() > o.maxLagMs) return busy('event_loop_lag');
    if (o.maxUtilization > 0 && o.utilization() > o.maxUtilization) return busy('event_loop_busy');
    return undefined;
  }

  release(sourceIp: string): void {
    if (this.#active > 0) this.#active--;
    const src = this.#perSource.get(sourceIp);
    if (!src) return;
    if (src.active > 0) src.active--;
    if (src.active === 0 && src.rate.empty) this.#perSource.delete(sourceIp);
  }
}
