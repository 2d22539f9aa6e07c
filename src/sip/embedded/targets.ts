/**
 * Where an outbound INVITE may go: the RFC 3263 targets of its Request-URI less the ones that are down, or the one
 * outbound proxy. Also where each attempt's outcome is logged, counted and turned into the targets' health.
 *
 * An outbound proxy (TELNYX_OUTBOUND_PROXY) is the only next hop and an element the operator runs, which does its own
 * dispatching: it is neither resolved by SRV, nor probed, nor ever held down (holding the only next hop down would
 * turn one slow INVITE into refused calls with nowhere else to go).
 */
import type { Logger } from '../../logger.ts';
import type { CachedDns } from './dns.ts';
import type { AttemptOutcome } from './failover.ts';
import type { IpFamily } from './listen.ts';
import type { SipTransportName } from './message.ts';
import { parseHostPort, resolveDestination } from './resolve.ts';
import { resolveTargets, type SipTarget, targetKey } from './rfc3263.ts';
import type { TargetHealth } from './target-health.ts';

export interface TargetPlan {
  /** Targets to try, in order: resolved and up. Empty when every target is down. */
  targets: SipTarget[];
  /** Resolved targets left out because they are down. */
  skipped: SipTarget[];
  /** False for an outbound proxy: its outcomes never hold it down. */
  tracked: boolean;
}

export interface TargetObserver {
  targetAttempt?(target: string, result: string): void;
}

export interface TargetRouterOptions {
  dns: CachedDns;
  health: TargetHealth;
  /** The address family the listening sockets reach (known once the transport is up). */
  family: IpFamily;
  logger: Logger;
  observer?: TargetObserver;
  /** Random source of the SRV weight draw (tests). */
  random?: () => number;
}

export class TargetRouter {
  readonly #opts: TargetRouterOptions;

  constructor(opts: TargetRouterOptions) {
    this.#opts = opts;
  }

  /**
   * The targets an INVITE to `uri` tries. `track`: the INVITE takes part in target health (it skips down targets, and
   * its outcomes hold targets down); the call logic asks for it with targetTimeoutMs (the Telnyx legs), so other
   * INVITEs (toward the PBX) keep plain RFC 3263 order. Throws when the URI resolves to nothing at all.
   */
  async plan(uri: string, proxy: string | undefined, transport: SipTransportName, track: boolean): Promise<TargetPlan> {
    if (proxy) {
      const dest = await resolveDestination(uri, proxy, transport, this.#opts.family);
      return { targets: [{ ...dest, name: parseHostPort(proxy).host }], skipped: [], tracked: false };
    }
    const all = await this.resolve(uri, transport, track);
    if (all.length === 0) throw new Error(`no address found for ${uri}`);
    if (!track) return { targets: all, skipped: [], tracked: false };
    const health = this.#opts.health;
    const plan = { targets: all.filter((t) => health.isUp(t)), skipped: all.filter((t) => !health.isUp(t)) };
    if (plan.skipped.length > 0)
      this.#opts.logger.info(
        { uri, skipped: plan.skipped.map(targetKey), targets: plan.targets.map(targetKey) },
        plan.targets.length ? 'skipping SIP targets that are down' : 'every SIP target is down',
      );
    return { ...plan, tracked: true };
  }

  /** Every target of `uri` in RFC 3263 order, up or down (the prober pings them all), listed in health if `list`. */
  async resolve(uri: string, transport: SipTransportName, list = true): Promise<SipTarget[]> {
    const targets = await resolveTargets(uri, this.#opts.dns, {
      transports: [transport],
      family: this.#opts.family,
      random: this.#opts.random,
    });
    if (list) for (const t of targets) this.#opts.health.seen(t);
    return targets;
  }

  /** One attempt is over: one log line, one count, and a hold when the target did not answer. */
  report(target: SipTarget, outcome: AttemptOutcome, info: { tracked: boolean; callId: string; ms: number }): void {
    const key = targetKey(target);
    const line = { callId: info.callId, target: key, name: target.name, ...outcome, ms: info.ms };
    if (outcome.failover || outcome.result === 'timeout' || outcome.result === 'transport_error')
      this.#opts.logger.warn(line, 'SIP target attempt failed');
    else this.#opts.logger.debug(line, 'SIP target attempt'); // info: the call summary is the call's one line
    this.#opts.observer?.targetAttempt?.(key, outcome.result);
    if (info.tracked && outcome.holdMs > 0) this.#opts.health.hold(target, outcome.holdMs, outcome.result);
  }
}
