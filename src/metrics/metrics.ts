/**
 * Prometheus metrics (GET /metrics). One Metrics object per Gateway, with its own Registry (not prom-client's global
 * one) so several gateways in one process — tests — do not collide. Callers use the typed methods below; label
 * values are folded to fixed sets so hostile or odd input (SIP methods, error codes) cannot grow the series count.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { HttpServer } from '../http/server.ts';
import { SipMessageCounter } from './sip-messages.ts';
import { TrunkMetrics, type TrunkUsageView } from './trunk-metrics.ts';

const PREFIX = 'kallglot_gateway_';

export interface MetricsOptions {
  /** Current number of active calls, read at scrape time. Can also be set later with setActiveCallsSource. */
  activeCalls?: () => number;
  /** Node process metrics (CPU, memory, event loop, GC); default true. */
  defaultMetrics?: boolean;
  /** Kallglot session ends not yet confirmed, read at scrape time: a number that only grows means ends are stuck. */
  pendingSessionEnds?: () => number;
  /** The cached Kallglot probe: true reachable, false down, undefined not probed yet (exported as 0). */
  kallglotUp?: () => boolean | undefined;
  /** Gateway version for the build_info series. */
  version?: string;
  /** Admitted calls not yet answered or failed, read at scrape time (admission's MAX_INFLIGHT_SETUPS). */
  inflightSetups?: () => number;
  /** The event-loop lag admission sees (OVERLOAD_LAG_MS), ms, read at scrape time. */
  eventLoopLagMs?: () => number;
  /** The event-loop utilization admission sees (OVERLOAD_UTILIZATION), 0 to 1, read at scrape time. */
  eventLoopUtilization?: () => number;
  /** The SIP engine's resolved next hops (Telnyx SBCs) and whether INVITEs may use them, read at scrape time. */
  sipTargets?: () => ReadonlyArray<{ target: string; up: boolean }>;
  /** Each Telnyx trunk's calls up and INVITEs waiting for a slot, read at scrape time (and its name at start). */
  trunkUsage?: () => readonly TrunkUsageView[];
}

/** The operational series: what an operator alerts on besides the call counters. */
interface OpsMetrics {
  fallbacks: Counter<'reason'>;
  admissionRejects: Counter<'reason'>;
  routingReloads: Counter<'result'>;
  targetAttempts: Counter<'target' | 'result'>;
  takenOverCalls: Counter;
  unknownCreates: Counter<'outcome'>;
}

function createTargetGauge(registers: Registry[], targets: NonNullable<MetricsOptions['sipTargets']>): void {
  new Gauge({
    name: `${PREFIX}sip_target_up`,
    help: 'Whether INVITEs may use this resolved SIP next hop (1) or skip it (0: OPTIONS probes or INVITEs failed)',
    labelNames: ['target'],
    registers,
    collect() {
      // Targets DNS no longer names must disappear, not linger at their last value.
      this.reset();
      for (const t of targets()) this.set({ target: targetLabel(t.target) }, t.up ? 1 : 0);
    },
  });
}

/** What admission's overload control reads, as gauges: an operator sees how close the gateway runs to refusing. */
function createLoadGauges(registers: Registry[], opts: MetricsOptions): void {
  const inflight = opts.inflightSetups ?? (() => 0);
  const lag = opts.eventLoopLagMs ?? (() => 0);
  const utilization = opts.eventLoopUtilization ?? (() => 0);
  new Gauge({
    name: `${PREFIX}inflight_setups`,
    help: 'Admitted calls not yet answered or failed (refused with 503 beyond MAX_INFLIGHT_SETUPS)',
    registers,
    collect() {
      this.set(inflight());
    },
  });
  new Gauge({
    name: `${PREFIX}event_loop_lag_seconds`,
    help: 'How late the event loop runs, smoothed, as admission sees it (new calls refused with 503 beyond OVERLOAD_LAG_MS)',
    registers,
    collect() {
      this.set(lag() / 1000);
    },
  });
  new Gauge({
    name: `${PREFIX}event_loop_utilization`,
    help: 'Share of time the event loop was busy, smoothed over about 0.5 s (new calls refused with 503 beyond OVERLOAD_BUSY_PERCENT)',
    registers,
    collect() {
      this.set(utilization());
    },
  });
}

function createOpsMetrics(registers: Registry[], opts: MetricsOptions): OpsMetrics {
  const pending = opts.pendingSessionEnds ?? (() => 0);
  createTargetGauge(registers, opts.sipTargets ?? (() => []));
  const up = opts.kallglotUp ?? (() => undefined);
  new Gauge({
    name: `${PREFIX}pending_session_ends`,
    help: 'Kallglot session ends requested but not yet confirmed (persisted and retried)',
    registers,
    collect() {
      this.set(pending());
    },
  });
  new Gauge({
    name: `${PREFIX}kallglot_up`,
    help: 'Whether the last probe of the Kallglot API got an answer (1) or not (0); calls fall back while it is 0',
    registers,
    collect() {
      this.set(up() === true ? 1 : 0);
    },
  });
  new Gauge({
    name: `${PREFIX}build_info`,
    help: 'Always 1; the labels say which gateway version runs on which Node',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: opts.version ?? 'unknown', node: process.version }, 1);
  const ops: OpsMetrics = {
    fallbacks: new Counter({
      name: `${PREFIX}fallbacks_total`,
      help: 'Calls that went through untranslated although their rule asked for translation, by reason',
      labelNames: ['reason'],
      registers,
    }),
    admissionRejects: new Counter({
      name: `${PREFIX}admission_rejects_total`,
      help: 'INVITEs refused at admission, by reason (draining, source_not_allowed, inflight_setups, event_loop_lag, event_loop_busy, concurrency, rate)',
      labelNames: ['reason'],
      registers,
    }),
    routingReloads: new Counter({
      name: `${PREFIX}routing_reloads_total`,
      help: 'Routing rules reloads (file watcher, SIGHUP, admin API) by result: ok or refused',
      labelNames: ['result'],
      registers,
    }),
    targetAttempts: new Counter({
      name: `${PREFIX}sip_target_attempts_total`,
      help: 'Outbound INVITE attempts per resolved SIP next hop, by result (answered, rejected, unavailable, cps_limit, timeout, transport_error, cancelled)',
      labelNames: ['target', 'result'],
      registers,
    }),
    takenOverCalls: new Counter({
      name: `${PREFIX}taken_over_calls_total`,
      help: 'Calls of a dead instance (shared registry) this instance closed, ending their Kallglot sessions',
      registers,
    }),
    unknownCreates: new Counter({
      name: `${PREFIX}kallglot_unknown_creates_total`,
      help: 'Kallglot creates that failed with an unknown outcome, by how their resolution ended (ended, none, claimed, gave_up, dropped: the last two may leave a session open)',
      labelNames: ['outcome'],
      registers,
    }),
  };
  // Known label values start at 0: increase() over a series that appears at 1 would miss its first event.
  for (const result of ['ok', 'refused']) ops.routingReloads.inc({ result }, 0);
  for (const outcome of ['ended', 'none', 'claimed', 'gave_up', 'dropped']) ops.unknownCreates.inc({ outcome }, 0);
  const reasons = ['draining', 'source_not_allowed', 'inflight_setups', 'event_loop_lag', 'event_loop_busy'];
  for (const reason of [...reasons, 'concurrency', 'rate']) {
    ops.admissionRejects.inc({ reason }, 0);
  }
  return ops;
}

export class Metrics {
  readonly #registry = new Registry();
  #activeCalls: () => number;
  readonly #calls: Counter<'route' | 'result'>;
  readonly #setup: Histogram<'route'>;
  readonly #kallglotRequests: Counter<'op' | 'status'>;
  readonly #kallglotSeconds: Histogram<'op'>;
  readonly #sip: SipMessageCounter;
  readonly #parseErrors: Counter;
  readonly #webhookFailures: Counter<'path'>;
  readonly #ops: OpsMetrics;
  readonly #trunks: TrunkMetrics;
  readonly #kallglotPoolWait: Histogram<'op'>;
  readonly #kallglotPoolQueued: Counter<'op'>;

  constructor(opts: MetricsOptions = {}) {
    this.#activeCalls = opts.activeCalls ?? (() => 0);
    const registers = [this.#registry];
    this.#calls = new Counter({
      name: `${PREFIX}calls_total`,
      help: 'Finished calls by route and result',
      labelNames: ['route', 'result'],
      registers,
    });
    const active = (): number => this.#activeCalls();
    new Gauge({
      name: `${PREFIX}active_calls`,
      help: 'Calls in progress',
      registers,
      collect() {
        this.set(active());
      },
    });
    this.#setup = new Histogram({
      name: `${PREFIX}call_setup_seconds`,
      help: 'Time from the incoming call to the answered outgoing leg',
      labelNames: ['route'],
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 30],
      registers,
    });
    this.#kallglotRequests = new Counter({
      name: `${PREFIX}kallglot_requests_total`,
      help: 'Kallglot API requests by operation and HTTP status or error code',
      labelNames: ['op', 'status'],
      registers,
    });
    this.#kallglotSeconds = new Histogram({
      name: `${PREFIX}kallglot_request_seconds`,
      help: 'Kallglot API request duration',
      labelNames: ['op'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
      registers,
    });
    this.#sip = new SipMessageCounter(registers, PREFIX);
    this.#parseErrors = new Counter({
      name: `${PREFIX}sip_parse_errors_total`,
      help: 'Unparseable SIP messages',
      registers,
    });
    this.#webhookFailures = new Counter({
      name: `${PREFIX}webhook_verification_failures_total`,
      help: 'Webhooks rejected because their signature, timestamp or headers did not verify',
      labelNames: ['path'],
      registers,
    });
    this.#kallglotPoolWait = new Histogram({
      name: `${PREFIX}kallglot_pool_wait_seconds`,
      help: 'Time a Kallglot request waited for a connection of the client pool (queue and connect) before it was sent',
      labelNames: ['op'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.25, 0.5, 1, 2],
      registers,
    });
    this.#kallglotPoolQueued = new Counter({
      name: `${PREFIX}kallglot_pool_queued_total`,
      help: 'Kallglot requests that found every connection of the client pool busy and queued (raise KALLGLOT_POOL_CONNECTIONS)',
      labelNames: ['op'],
      registers,
    });
    this.#ops = createOpsMetrics(registers, opts);
    this.#trunks = new TrunkMetrics(registers, opts.trunkUsage ?? (() => []));
    createLoadGauges(registers, opts);
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.#registry });
  }

  get contentType(): string {
    return this.#registry.contentType;
  }

  setActiveCallsSource(fn: () => number): void {
    this.#activeCalls = fn;
  }

  /** route: translated | fallback | bypass | rejected; result: e.g. completed, failed, busy, error. */
  callFinished(route: string, result: string): void {
    this.#calls.inc({ route: word(route), result: word(result) });
  }

  setupLatency(route: string, seconds: number): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#setup.observe({ route: word(route) }, seconds);
  }

  /** statusOrCode: the HTTP status, or the client's local code (timeout, network_error, …) when there was none. */
  kallglotRequest(op: 'create' | 'get' | 'end', statusOrCode: number | string, seconds: number): void {
    this.#kallglotRequests.inc({
      op,
      status: typeof statusOrCode === 'number' ? String(statusOrCode) : word(statusOrCode),
    });
    if (Number.isFinite(seconds) && seconds >= 0) this.#kallglotSeconds.observe({ op }, seconds);
  }

  /** A Kallglot request got a connection after `seconds`; `queued`: the pool was full when it came. */
  kallglotPoolWait(op: 'create' | 'get' | 'end', seconds: number, queued: boolean): void {
    if (Number.isFinite(seconds) && seconds >= 0) this.#kallglotPoolWait.observe({ op }, seconds);
    if (queued) this.#kallglotPoolQueued.inc({ op });
  }

  /** methodOrStatus: a request method (INVITE…) or a response status (486); unknown methods count as `other`. */
  sipMessage(direction: 'in' | 'out', methodOrStatus: string | number): void {
    this.#sip.count(direction, methodOrStatus);
  }

  parseError(): void {
    this.#parseErrors.inc();
  }

  webhookVerificationFailed(path: string): void {
    this.#webhookFailures.inc({ path: word(path) });
  }

  /** reason: why the translated route was given up (kallglot_timeout, translated_leg_503, …). */
  fallback(reason: string): void {
    this.#ops.fallbacks.inc({ reason: word(reason) });
  }

  admissionRejected(reason: string): void {
    this.#ops.admissionRejects.inc({ reason: word(reason) });
  }

  routingReload(result: 'ok' | 'refused'): void {
    this.#ops.routingReloads.inc({ result });
  }

  /** One INVITE about to go out on a Telnyx trunk: its CPS and concurrency limits let it. */
  trunkInvite(trunk: string): void {
    this.#trunks.invite(trunk);
  }

  /** One INVITE a Telnyx trunk's limit refused before sending (the caller got 503). */
  trunkLimitRefused(trunk: string, limit: 'cps' | 'concurrency'): void {
    this.#trunks.refused(trunk, limit);
  }

  /** target: `transport:address:port` of one resolved next hop; result: what the INVITE attempt on it came to. */
  targetAttempt(target: string, result: string): void {
    this.#ops.targetAttempts.inc({ target: targetLabel(target), result: word(result) });
  }

  /** A dead instance's calls closed by this one (REGISTRY_URL: its lease expired). */
  callsTakenOver(calls: number): void {
    this.#ops.takenOverCalls.inc(calls);
  }

  /** A Kallglot create of unknown outcome resolved (sessions/create-resolver.ts). */
  unknownCreateResolved(outcome: string): void {
    this.#ops.unknownCreates.inc({ outcome: word(outcome) });
  }

  async render(): Promise<string> {
    return this.#registry.metrics();
  }
}

export function registerMetricsRoute(http: HttpServer, metrics: Metrics): void {
  http.route('GET', '/metrics', async () => ({
    status: 200,
    body: await metrics.render(),
    contentType: metrics.contentType,
  }));
}

/** `udp:192.0.2.1:5060`, `tls:[2001:db8::1]:5061`: a next hop as the engine names it; anything else is `other`. */
function targetLabel(v: string): string {
  return /^[a-z]{3}:[A-Za-z0-9_.:[\]-]{1,70}$/.test(v) ? v : 'other';
}

/** Free-form label values: short identifier-like text only. */
function word(v: string): string {
  return /^[A-Za-z0-9_./:-]{1,64}$/.test(v) ? v : 'other';
}
