/**
 * Operator actions behind ADMIN_TOKEN: GET /routing (the rules in force), POST /admin/reload (re-read them now),
 * POST /admin/drain (a graceful stop, as SIGTERM). The Gateway supplies what each needs through AdminOperations, so
 * this module never reaches the process: stopping it is main.ts's business.
 */
import type { HttpResponse, HttpServer } from '../http/server.ts';
import { describeRules, describeRulesError } from '../routing/describe.ts';
import type { ReloadOutcome } from '../routing/store.ts';
import type { RuleSet } from '../routing/types.ts';
import { checkAdminToken } from './calls-routes.ts';

export interface DrainStarted {
  activeCalls: number;
  /** True when a drain (SIGTERM or an earlier request) was already under way: nothing new was started. */
  alreadyDraining: boolean;
  drainTimeoutSec: number;
}

export interface AdminOperations {
  adminToken: string;
  routing: {
    current(): RuleSet;
    loadedAt(): Date | undefined;
    lastFailure(): { at: Date; error: Error } | undefined;
  };
  reloadRouting(trigger: string): ReloadOutcome;
  drain(trigger: string): DrainStarted;
}

export function registerOperationRoutes(http: HttpServer, ops: AdminOperations): void {
  http.route('GET', '/routing', (req) => checkAdminToken(req, ops.adminToken) ?? routingView(ops));
  http.route('POST', '/admin/reload', (req) => checkAdminToken(req, ops.adminToken) ?? reload(ops));
  http.route('POST', '/admin/drain', (req) => {
    const denied = checkAdminToken(req, ops.adminToken);
    if (denied) return denied;
    const started = ops.drain('POST /admin/drain');
    return { status: 202, body: { draining: true, ...started } };
  });
}

function routingView(ops: AdminOperations): HttpResponse {
  const failure = ops.routing.lastFailure();
  return {
    status: 200,
    body: {
      ...describeRules(ops.routing.current()),
      loadedAt: ops.routing.loadedAt()?.toISOString(),
      // A watcher reload that was refused leaves the old rules in force: say so next to them.
      ...(failure && { lastRefused: { at: failure.at.toISOString(), ...describeRulesError(failure.error) } }),
    },
  };
}

function reload(ops: AdminOperations): HttpResponse {
  const outcome = ops.reloadRouting('POST /admin/reload');
  if (outcome.ok) {
    return {
      status: 200,
      body: {
        reloaded: true,
        file: outcome.rules.file,
        rules: outcome.rules.rules.length,
        defaultMode: outcome.rules.default.mode,
      },
    };
  }
  const kept = ops.routing.current();
  return {
    status: 422,
    body: {
      reloaded: false,
      error: 'rules_refused',
      errors: [describeRulesError(outcome.error)],
      keptRules: kept.rules.length,
      loadedAt: ops.routing.loadedAt()?.toISOString(),
    },
  };
}
