/** Liveness and readiness. Readiness is false while draining so a load balancer or pre-stop hook stops sending calls. */
import type { HttpServer } from './server.ts';

export interface HealthSource {
  activeCalls(): number;
  /** SIP engine counters (dialogs, transactions, messages): a number that only grows points at a leak. */
  sipStats(): unknown;
  /**
   * The Telnyx SBCs the SIP engine resolved (RFC 3263) and whether INVITEs may use them (OPTIONS probes, failed
   * INVITEs). Shown in /healthz, never gating it: with every SBC down calls still get a clean 503 quickly.
   */
  sipTargets?: () => unknown[];
  pendingSessionEnds(): number;
  draining(): boolean;
  sipListening(): boolean;
  version: string;
  startedAt: Date;
  /**
   * Dependencies reported in the /readyz body that never change its status: a dependency the service can run
   * without (degraded) must not make a load balancer pull an instance that still does its job.
   */
  dependencies?: () => Record<string, unknown>;
}

export function registerHealthRoutes(http: HttpServer, src: HealthSource): void {
  http.route('GET', '/healthz', () => ({
    status: 200,
    body: {
      status: 'ok',
      version: src.version,
      uptimeSec: Math.round((Date.now() - src.startedAt.getTime()) / 1000),
      activeCalls: src.activeCalls(),
      pendingSessionEnds: src.pendingSessionEnds(),
      sip: src.sipStats(),
      telnyxTargets: src.sipTargets?.() ?? [],
    },
  }));
  http.route('GET', '/readyz', () => {
    const ready = src.sipListening() && !src.draining();
    return {
      status: ready ? 200 : 503,
      body: {
        ...src.dependencies?.(),
        ready,
        draining: src.draining(),
        sipListening: src.sipListening(),
        activeCalls: src.activeCalls(),
      },
    };
  });
}
