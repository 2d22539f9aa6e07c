/**
 * The health of the next hops the engine resolved (RFC 3263 targets), shared by every INVITE and the prober.
 *
 * A target is skipped ("down") while either holds:
 * - it failed `failuresToDown` OPTIONS probes in a row (Kamailio's ds_ping): skipped until a probe is answered again;
 * - an INVITE to it got no answer at all (timeout, transport error), or a 503 with Retry-After: skipped for a while
 *   (`hold`), so the fallback INVITE of the same call, and the next calls, do not wait on it again. An answered probe
 *   ends the hold early: the target answers again.
 * A target never seen failing is up, probed or not. Targets DNS stopped naming are forgotten after FORGET_MS.
 */
import type { SipTargetStatus } from '../port.ts';
import { type SipTarget, targetKey } from './rfc3263.ts';

/** How long a target nobody resolved or probed stays listed. */
const FORGET_MS = 10 * 60_000;

interface Entry {
  target: SipTarget;
  probeFailures: number;
  probeDown: boolean;
  heldUntil: number;
  lastProbe?: { at: number; result: string };
  lastSeen: number;
}

export interface TargetHealthOptions {
  /** Probes in a row that must fail before a target is skipped (TELNYX_PROBE_FAILURES). */
  failuresToDown: number;
  now?: () => number;
  /** A target went down or came back (for the log). */
  onChange?: (target: SipTarget, up: boolean, why: string) => void;
}

export class TargetHealth {
  readonly #opts: TargetHealthOptions;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: TargetHealthOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  /** Resolution named this target: list it (up unless known to be down). */
  seen(target: SipTarget): void {
    this.#entry(target);
  }

  isUp(target: SipTarget): boolean {
    const e = this.#entries.get(targetKey(target));
    return e === undefined || this.#up(e);
  }

  /** An INVITE got no answer from it (or a 503 with Retry-After): skip it for `ms`. */
  hold(target: SipTarget, ms: number, why: string): void {
    const e = this.#entry(target);
    const wasUp = this.#up(e);
    e.heldUntil = Math.max(e.heldUntil, this.#now() + ms);
    if (wasUp) this.#opts.onChange?.(target, false, why);
  }

  /** One OPTIONS probe's outcome; `result` is the status or `timeout`/`transport_error`. */
  probed(target: SipTarget, ok: boolean, result: string): void {
    const e = this.#entry(target);
    const wasUp = this.#up(e);
    e.lastProbe = { at: this.#now(), result };
    if (ok) {
      e.probeFailures = 0;
      e.probeDown = false;
      e.heldUntil = 0;
    } else {
      e.probeFailures++;
      if (e.probeFailures >= this.#opts.failuresToDown) e.probeDown = true;
    }
    const up = this.#up(e);
    if (up !== wasUp) this.#opts.onChange?.(target, up, ok ? 'probe answered' : `${e.probeFailures} probes failed`);
  }

  snapshot(): SipTargetStatus[] {
    const now = this.#now();
    const out: SipTargetStatus[] = [];
    for (const [key, e] of this.#entries) {
      if (now - e.lastSeen > FORGET_MS && this.#up(e)) {
        this.#entries.delete(key);
        continue;
      }
      const held = e.heldUntil > now;
      out.push({
        target: key,
        name: e.target.name,
        up: this.#up(e),
        ...(e.probeDown ? { down: 'probe' as const } : held ? { down: 'invite' as const } : {}),
        ...(held ? { downUntil: new Date(e.heldUntil).toISOString() } : {}),
        probeFailures: e.probeFailures,
        ...(e.lastProbe
          ? { lastProbe: { at: new Date(e.lastProbe.at).toISOString(), result: e.lastProbe.result } }
          : {}),
      });
    }
    return out;
  }

  #up(e: Entry): boolean {
    return !e.probeDown && e.heldUntil <= this.#now();
  }

  #entry(target: SipTarget): Entry {
    const key = targetKey(target);
    let e = this.#entries.get(key);
    if (!e) {
      e = { target, probeFailures: 0, probeDown: false, heldUntil: 0, lastSeen: this.#now() };
      this.#entries.set(key, e);
    }
    e.lastSeen = this.#now();
    return e;
  }
}
