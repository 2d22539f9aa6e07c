/**
 * The engine's outbound next-hop machinery in one place: the DNS cache and the target health table exist from
 * construction (so /healthz can read them at any time), the RFC 3263 router and the OPTIONS prober once the sockets
 * are up (the router needs the address family they reach, the prober sends through them).
 */
import type { Logger } from '../../logger.ts';
import type { SipTargetStatus } from '../port.ts';
import { CachedDns, createDnsClient, type DnsClient } from './dns.ts';
import { type ProbeOptions, TargetProber } from './prober.ts';
import { targetKey } from './rfc3263.ts';
import { TargetHealth } from './target-health.ts';
import { type TargetObserver, TargetRouter } from './targets.ts';
import type { UaContext } from './ua-core.ts';

export interface EngineTargetOptions {
  /** DNS servers (`ip`, `ip:port`, `[v6]:port`) instead of the system's (DNS_SERVERS); empty: the system's. */
  dnsServers?: readonly string[];
  /** OPTIONS probing of these URIs' targets; absent: none. */
  probe?: ProbeOptions;
  /** Failed probes in a row that take a target out of rotation (default 3). */
  probeFailures?: number;
  /** Tests: a DNS client instead of node's Resolver, and the SRV weight draw. */
  dnsClient?: DnsClient;
  random?: () => number;
}

export class NextHops {
  readonly #opts: EngineTargetOptions;
  readonly #logger: Logger;
  readonly #observer: TargetObserver | undefined;
  readonly #dns: CachedDns;
  readonly #health: TargetHealth;
  #router: TargetRouter | undefined;
  #prober: TargetProber | undefined;

  constructor(opts: EngineTargetOptions, logger: Logger, observer?: TargetObserver) {
    this.#opts = opts;
    this.#logger = logger;
    this.#observer = observer;
    const servers = opts.dnsServers ?? [];
    this.#dns = new CachedDns({
      client: opts.dnsClient ?? createDnsClient(servers),
      customServers: servers.length > 0 || opts.dnsClient !== undefined,
      logger,
    });
    this.#health = new TargetHealth({
      failuresToDown: opts.probeFailures ?? 3,
      onChange: (target, up, why) => {
        const line = { target: targetKey(target), name: target.name, why };
        if (up) logger.info(line, 'SIP target up');
        else logger.warn(line, 'SIP target down');
      },
    });
  }

  /** The sockets are up: build the router for their address family and start probing, if asked for. */
  start(ctx: UaContext): void {
    const router = new TargetRouter({
      dns: this.#dns,
      health: this.#health,
      family: ctx.family,
      logger: this.#logger,
      observer: this.#observer,
      random: this.#opts.random,
    });
    this.#router = router;
    const probe = this.#opts.probe;
    if (!probe || probe.intervalMs <= 0 || probe.uris.length === 0) return;
    this.#prober = new TargetProber(probe, { ctx, router, health: this.#health, logger: this.#logger });
    this.#prober.start();
  }

  stop(): void {
    this.#prober?.stop();
  }

  get router(): TargetRouter {
    if (!this.#router) throw new Error('SIP engine not started');
    return this.#router;
  }

  snapshot(): SipTargetStatus[] {
    return this.#health.snapshot();
  }
}
