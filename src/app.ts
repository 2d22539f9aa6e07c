/**
 * The gateway as an object: builds every component from the config and owns their start/stop order.
 * main.ts only handles the process (signals, exit codes); tests can run a Gateway in-process.
 */
import { type GatewayConfig, redactedConfig } from './config/load.ts';
import { allTrunks } from './config/trunks.ts';
import type { Logger } from './logger.ts';
import { HttpServer } from './http/server.ts';
import { registerHealthRoutes } from './http/health.ts';
import { KallglotClient } from './kallglot/client.ts';
import { KallglotSandbox } from './kallglot/sandbox.ts';
import { type ReloadOutcome, RoutingStore } from './routing/store.ts';
import { Admission } from './calls/admission.ts';
import { EventLoopLag } from './calls/overload.ts';
import { poolConnections } from './kallglot/pool.ts';
import { CallManager } from './calls/call-manager.ts';
import { TrunkLimits } from './calls/trunk-limits.ts';
import { DirectionClassifier } from './calls/direction.ts';
import { SessionEnder } from './sessions/ender.ts';
import { CreateResolver } from './sessions/create-resolver.ts';
import { PbxAuthenticator, parseUserList } from './calls/pbx-auth.ts';
import type { CallSummary } from './calls/types.ts';
import { createEngine } from './sip/create-engine.ts';
import type { CertificateReload, SipEngine } from './sip/port.ts';
import { type OpenedRegistry, openRegistry } from './registry/open.ts';
import type { RegistryPort } from './registry/port.ts';
import { guardedCallWrites } from './registry/call-writes.ts';
import { recoverOrphans } from './registry/recovery.ts';
import { RegistryRetention } from './registry/retention.ts';
import { registerCallRoutes } from './admin/calls-routes.ts';
import { type DrainStarted, registerOperationRoutes } from './admin/operations-routes.ts';
import { KallglotProbe } from './kallglot/probe.ts';
import { registerTelnyxRoutes } from './telnyx/routes.ts';
import { Metrics, registerMetricsRoute } from './metrics/metrics.ts';

export const VERSION = '0.1.0';
/** Often enough for an alert within a minute, rare enough to be no load: /readyz and /metrics read the cached result. */
const KALLGLOT_PROBE_INTERVAL_MS = 15_000;
const KALLGLOT_PROBE_TIMEOUT_MS = 5000;

export class Gateway {
  readonly config: GatewayConfig;
  readonly #logger: Logger;
  readonly #http: HttpServer;
  readonly #routing: RoutingStore;
  #sandbox: KallglotSandbox | undefined;
  #kallglot: KallglotClient | undefined;
  #kallglotProbe: KallglotProbe | undefined;
  #engine: SipEngine | undefined;
  #calls: CallManager | undefined;
  #sessionEnder: SessionEnder | undefined;
  #creates: CreateResolver | undefined; // every path creates sessions through it: see sessions/create-resolver.ts
  #admission: Admission;
  /** Admission's overload signal; runs from start() to stop(). */
  readonly #lag = new EventLoopLag();
  /** The registry with its guard: the DATA_DIR lock (SQLite) or this instance's lease (REGISTRY_URL). */
  #registry: OpenedRegistry | undefined;
  #retention: RegistryRetention | undefined;
  readonly #metrics: Metrics;
  readonly #trunks: TrunkLimits;
  #sipListening = false;
  httpPort = 0;
  sipPort = 0;
  /** Test hook: every call summary. */
  onCallSummary: ((s: CallSummary) => void) | undefined;
  /**
   * Set by main.ts: POST /admin/drain asks the process to stop as SIGTERM would. Without it (in-process tests) a
   * drain request only stops admitting calls.
   */
  onDrainRequested: ((trigger: string) => void) | undefined;

  constructor(config: GatewayConfig, logger: Logger) {
    this.config = config;
    this.#logger = logger;
    this.#http = new HttpServer(logger.child({ component: 'http' }));
    this.#trunks = new TrunkLimits({
      trunks: allTrunks(config.telnyx),
      onGranted: (trunk) => this.#metrics.trunkInvite(trunk),
      onRefused: (trunk, limit) => this.#metrics.trunkLimitRefused(trunk, limit),
    });
    const telnyxTrunks = allTrunks(config.telnyx).map((t) => t.name);
    this.#routing = new RoutingStore(config.routing.file, logger.child({ component: 'routing' }), { telnyxTrunks });
    this.#metrics = new Metrics({
      trunkUsage: () => this.#trunks.usage(),
      activeCalls: () => this.#calls?.activeCalls ?? 0,
      pendingSessionEnds: () => this.#sessionEnder?.pending() ?? 0,
      kallglotUp: () => this.#kallglotProbe?.current()?.reachable,
      inflightSetups: () => this.#admission.inflightSetups,
      eventLoopLagMs: () => this.#lag.lagMs(),
      eventLoopUtilization: () => this.#lag.utilization(),
      sipTargets: () => this.#engine?.targets?.() ?? [],
      version: VERSION,
    });
    // Every reload counts, whoever triggered it: the file watcher, SIGHUP or the admin API.
    this.#routing.on('reloaded', () => this.#metrics.routingReload('ok'));
    this.#routing.on('reloadFailed', () => this.#metrics.routingReload('refused'));
    this.#admission = new Admission({
      // Telnyx's signalling addresses may call too once inbound calls have a PBX target (PBX_URI_TEMPLATE).
      allowedSources: DirectionClassifier.allowedSources(config.calls.allowedSources, inboundSources(config)),
      maxConcurrent: config.calls.maxConcurrent,
      maxCallsPerSecond: config.calls.maxCallsPerSecond,
      maxConcurrentPerSource: config.calls.maxConcurrentPerSource,
      maxCallsPerSecondPerSource: config.calls.maxCallsPerSecondPerSource,
      overload: {
        maxLagMs: config.calls.overloadLagMs,
        lagMs: () => this.#lag.lagMs(),
        maxUtilization: config.calls.overloadBusyPercent / 100,
        utilization: () => this.#lag.utilization(),
        maxInflightSetups: config.calls.maxInflightSetups,
      },
    });
  }

  /**
   * Start in an order that protects other instances: lock the data directory before anything reads the registry,
   * bind both ports before recovery touches it. A second instance on the same DATA_DIR stops at the lock; one on
   * busy ports stops at the bind; neither ever reaches recovery, which would close the first instance's live calls.
   */
  async start(): Promise<void> {
    this.#lag.start();
    const registry = await this.#openRegistry();
    const kallglot = await this.#startKallglot();
    const sessionEnder = new SessionEnder(kallglot, this.#logger.child({ component: 'session-ender' }), {
      store: registry,
    });
    this.#sessionEnder = sessionEnder;
    this.#creates = new CreateResolver(kallglot, sessionEnder, this.#logger.child({ component: 'create-resolver' }), {
      store: registry, // a create of unknown outcome is kept there until resolved, across a crash
      firstDelayMs: this.config.kallglot.createResolveDelayMs,
      onResolved: (outcome) => this.#metrics.unknownCreateResolved(outcome),
    });
    this.#registerHttpRoutes(registry, this.#creates, sessionEnder);
    const { http } = this.config;
    this.httpPort = await bindOrExplain('HTTP_PORT', http.host, http.port, () =>
      this.#http.listen(http.port, http.host),
    );
    await this.#startSip(registry, this.#creates, sessionEnder);
    const recovery = { ender: sessionEnder, creates: this.#creates }; // own leftovers first, then dead instances'
    await recoverOrphans(registry, recovery, this.#logger.child({ component: 'recovery' }));
    this.#registry?.takeOverWith(recovery, (_instance, calls) => this.#metrics.callsTakenOver(calls));
    // After recovery, which queues the session ends of orphaned calls: a call whose end is pending keeps its row.
    this.#retention = new RegistryRetention({
      registry,
      retentionDays: this.config.registry.retentionDays,
      logger: this.#logger.child({ component: 'retention' }),
    });
    this.#retention.start();
    this.#logStarted();
  }

  async #openRegistry(): Promise<RegistryPort> {
    const { config } = this;
    this.#registry = await openRegistry({
      dataDir: config.dataDir,
      instanceId: config.instanceId,
      url: config.registry.url,
      deadAfterSec: config.registry.instanceDeadAfterSec,
      leaseIntervalSec: config.registry.leaseIntervalSec,
      logger: this.#logger.child({ component: 'registry' }),
    });
    this.#routing.load();
    this.#routing.watch();
    return this.#registry.registry;
  }

  /**
   * The Kallglot client, toward KALLGLOT_API_URL or a local sandbox started here. The sandbox runs only when the
   * config resolved `kallglot.sandbox` (never by default in production): a production gateway silently "translating"
   * against a sandbox would look healthy while no call is ever translated.
   */
  async #startKallglot(): Promise<KallglotClient> {
    const { config } = this;
    let apiUrl = config.kallglot.apiUrl;
    let apiKey = config.kallglot.apiKey;
    if (!config.kallglot.sandbox && !apiUrl) {
      throw new Error('no Kallglot account: set KALLGLOT_API_URL and KALLGLOT_API_KEY, or KALLGLOT_SANDBOX=true');
    }
    if (config.kallglot.sandbox) {
      this.#sandbox = new KallglotSandbox();
      const { url } = await this.#sandbox.start(0, '127.0.0.1');
      apiUrl = url;
      apiKey = 'sk_test_sandbox';
      this.#logger.warn(
        { kallglotUrl: url },
        'KALLGLOT_API_URL is not set: using the LOCAL KALLGLOT SANDBOX (no real translation)',
      );
    }
    this.#kallglot = new KallglotClient({
      baseUrl: apiUrl,
      apiKey,
      requestTimeoutMs: config.kallglot.requestTimeoutMs,
      retries: config.kallglot.retries,
      createDeadlineMs: config.kallglot.createDeadlineMs,
      endDeadlineMs: config.kallglot.endDeadlineMs,
      pool: {
        connections: poolConnections({
          configured: config.kallglot.poolConnections,
          maxCallsPerSecond: config.calls.maxCallsPerSecond,
          requestTimeoutMs: config.kallglot.requestTimeoutMs,
        }),
        http2: config.kallglot.http2,
      },
      logger: this.#logger.child({ component: 'kallglot' }),
      onAttempt: (op, statusOrCode, seconds) => this.#metrics.kallglotRequest(op, statusOrCode, seconds),
      onPoolWait: (op, seconds, queued) => this.#metrics.kallglotPoolWait(op, seconds, queued),
    });
    this.#kallglotProbe = new KallglotProbe({
      baseUrl: apiUrl,
      intervalMs: KALLGLOT_PROBE_INTERVAL_MS,
      timeoutMs: KALLGLOT_PROBE_TIMEOUT_MS,
      logger: this.#logger.child({ component: 'kallglot-probe' }),
    });
    this.#kallglotProbe.start();
    return this.#kallglot;
  }

  #registerHttpRoutes(registry: RegistryPort, kallglot: CreateResolver, sessionEnder: SessionEnder): void {
    const { config } = this;
    registerCallRoutes(this.#http, registry, config.http.adminToken);
    registerOperationRoutes(this.#http, {
      adminToken: config.http.adminToken,
      routing: this.#routing,
      reloadRouting: (trigger) => this.reloadRouting(trigger),
      drain: (trigger) => this.requestDrain(trigger),
    });
    registerMetricsRoute(this.#http, this.#metrics);
    registerTelnyxRoutes(this.#http, {
      config,
      logger: this.#logger,
      registry,
      kallglot,
      sessionEnder,
      rules: () => this.#routing.current(),
      metrics: this.#metrics,
    });
    registerHealthRoutes(this.#http, {
      activeCalls: () => this.#calls?.activeCalls ?? 0,
      sipStats: () => this.#engine?.stats() ?? null,
      sipTargets: () => this.#engine?.targets?.() ?? [],
      pendingSessionEnds: () => this.#sessionEnder?.pending() ?? 0,
      draining: () => this.#admission.draining,
      sipListening: () => this.#sipListening,
      version: VERSION,
      startedAt: new Date(),
      // Reported, not gating: without Kallglot calls still go through untranslated, and a load balancer that pulled
      // the gateway would turn those degraded calls into failed ones. kallglot_gateway_kallglot_up is for alerting.
      dependencies: () => ({ kallglot: this.#kallglotStatus() }),
    });
  }

  async #startSip(registry: RegistryPort, kallglot: CreateResolver, sessionEnder: SessionEnder): Promise<void> {
    const { config } = this;
    const engine = await createEngine(config, this.#logger.child({ component: 'sip' }), this.#metrics);
    this.#engine = engine;
    this.#calls = new CallManager({
      config,
      logger: this.#logger.child({ component: 'calls' }),
      engine,
      kallglot,
      sessionEnder,
      admission: this.#admission,
      rules: () => this.#routing.current(),
      trunks: this.#trunks,
      recorder: guardedCallWrites(registry, this.#logger),
      directions: new DirectionClassifier(config.calls.allowedSources, inboundSources(config)),
      pbxAuth: config.calls.pbxAuthUsers.length
        ? new PbxAuthenticator(config.calls.pbxAuthRealm, parseUserList(config.calls.pbxAuthUsers))
        : undefined,
      onSummary: (s) => {
        const result = s.sipStatus >= 200 && s.sipStatus < 300 ? 'completed' : `sip_${s.sipStatus}`;
        this.#metrics.callFinished(s.route, result);
        if (s.setupMs !== undefined) this.#metrics.setupLatency(s.route, s.setupMs / 1000);
        if (s.route === 'fallback') this.#metrics.fallback(s.fallbackReason ?? 'unknown');
        this.onCallSummary?.(s);
      },
      onAdmissionRejected: (why) => this.#metrics.admissionRejected(why),
    });
    await bindOrExplain('SIP_PORT', config.sip.host, config.sip.port, () => engine.start());
    this.sipPort = engine.localPort;
    this.#sipListening = true;
  }

  #logStarted(): void {
    const { config } = this;
    this.#logger.info(
      {
        version: VERSION,
        http: hostPort(config.http.host, this.httpPort),
        sip: `${hostPort(config.sip.host, this.sipPort)} (${config.sip.transports.join(',')})`,
        engine: config.sip.engine,
        kallglot: this.#sandbox ? 'sandbox' : config.kallglot.apiUrl,
        routingRules: this.#routing.current().rules.length,
        instanceId: config.instanceId,
        registry: this.#registry?.where,
      },
      'kallglot-sip-gateway started',
    );
    // The whole config is long; an operator asks for it with LOG_LEVEL=debug.
    this.#logger.debug({ config: redactedConfig(config) }, 'effective configuration');
  }

  /**
   * Re-read the SIP TLS certificate and key (SIGHUP), for new connections; the engine logs what it loaded or why it
   * kept the previous one. Without a TLS listener there is nothing to do.
   */
  reloadCertificates(trigger: string): CertificateReload {
    const outcome = this.#engine?.reloadCertificates?.() ?? { outcome: 'none' };
    if (outcome.outcome !== 'none') this.#logger.debug({ trigger, outcome }, `${trigger}: SIP TLS certificate reload`);
    return outcome;
  }

  /** Re-read the routing rules (SIGHUP, admin API). When the file is refused the previous rules stay in force. */
  reloadRouting(trigger: string): ReloadOutcome {
    this.#logger.info({ file: this.config.routing.file, trigger }, `${trigger}: reloading routing rules`);
    return this.#routing.tryReload();
  }

  /**
   * A drain asked for over the admin API: stop admitting now, so /readyz is 503 before the request is even answered,
   * then let main.ts stop the process as on SIGTERM. The hook runs on a later turn of the event loop so that the 202
   * leaves before a quick stop (no calls) closes the HTTP server under it.
   */
  requestDrain(trigger: string): DrainStarted {
    const alreadyDraining = this.#admission.draining;
    const activeCalls = this.#calls?.activeCalls ?? 0;
    if (!alreadyDraining) {
      this.#admission.startDraining();
      this.#engine?.setDraining?.(true); // OPTIONS 503: a dispatcher's ds_ping takes this gateway out
      this.#logger.info({ trigger, activeCalls }, `${trigger}: draining`);
      setImmediate(() => this.onDrainRequested?.(trigger));
    }
    return { activeCalls, alreadyDraining, drainTimeoutSec: this.config.calls.drainTimeoutSec };
  }

  /** The cached probe, for /readyz; null until the first probe has answered. */
  #kallglotStatus(): Record<string, unknown> {
    const last = this.#kallglotProbe?.current();
    if (!last) return { reachable: null };
    return { ...last, checkedAt: last.checkedAt.toISOString() };
  }

  /** Stop taking calls, let active ones finish up to drainMs, hang up the rest, end every session. */
  async stop(drainMs = 0): Promise<void> {
    this.#admission.startDraining();
    this.#engine?.setDraining?.(true);
    if (this.#calls && this.#calls.activeCalls > 0) {
      const idle = await this.#calls.waitIdle(drainMs);
      if (!idle) {
        this.#logger.warn({ activeCalls: this.#calls.activeCalls }, 'drain timeout: hanging up remaining calls');
        this.#calls.hangUpAll('gateway_shutdown');
        await new Promise((r) => setTimeout(r, 500)); // let the BYEs leave before the sockets close
      }
    }
    this.#creates?.stop(); // logs the creates of unknown outcome left unresolved, like the ends below
    await this.#sessionEnder?.shutdown(5000);
    await this.#engine?.stop();
    this.#sipListening = false;
    await this.#http.close();
    this.#routing.close();
    this.#trunks.close(); // INVITEs still waiting for a trunk slot are refused, not left pending
    this.#retention?.stop(); // before the registry closes: no batch may run on a closed database
    await this.#registry?.close();
    await this.#kallglotProbe?.stop();
    await this.#kallglot?.close();
    await this.#sandbox?.stop();
    this.#lag.stop();
    this.#logger.info('stopped');
  }
}

/** `[::]:5060`, not `:::5060`: an IPv6 address is bracketed so the port stays readable. */
function hostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** Telnyx's signalling addresses, when inbound calls are on (they need a PBX target); else undefined. */
function inboundSources(config: GatewayConfig): string[] | undefined {
  return config.calls.pbxUriTemplate ? config.calls.telnyxAllowedSources : undefined;
}

/** A port that cannot be bound is an operator's setting problem: say which setting. */
async function bindOrExplain<T>(setting: string, host: string, port: number, bind: () => Promise<T>): Promise<T> {
  try {
    return await bind();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      const why = {
        EADDRINUSE: 'is already in use',
        EACCES: 'needs privileges',
        EADDRNOTAVAIL: 'is not an address here',
      }[code];
      throw new Error(`cannot listen on ${hostPort(host, port)} (${setting}): the address ${why} (${code})`, {
        cause: err,
      });
    }
    throw err;
  }
}
