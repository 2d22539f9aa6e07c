/**
 * The settings that size the daemon to its load (schema.ts spreads them into the `calls` and `kallglot` sections):
 * overload control at admission, the Kallglot client's connection pool, and how soon a Kallglot create of unknown
 * outcome is looked into (sessions/create-resolver.ts). Their own file only to keep schema.ts under the house size
 * limit; docs/benchmarks.md has the measurements behind the defaults.
 */
export const overloadSchema = {
  overloadLagMs: {
    doc: 'Refuse new calls with 503 (Retry-After: 1) while the event loop lags more than this many ms (smoothed: one pause alone does not count): each admitted call would slow every other (0: never)',
    format: 'nat',
    default: 50,
    env: 'OVERLOAD_LAG_MS',
  },
  overloadBusyPercent: {
    doc: 'Refuse new calls with 503 (Retry-After: 1) while the event loop is busy more than this percent of the time (smoothed over about 0.5 s): the daemon has no room left for them (0: never)',
    format: 'nat',
    default: 95,
    env: 'OVERLOAD_BUSY_PERCENT',
  },
  maxInflightSetups: {
    doc: 'Refuse new calls with 503 (Retry-After: 1) while this many admitted calls are still being set up, not yet answered or failed (0: no bound)',
    format: 'nat',
    default: 1000,
    env: 'MAX_INFLIGHT_SETUPS',
  },
} as const;

export const kallglotPoolSchema = {
  poolConnections: {
    doc: 'Most connections to the Kallglot API, for session creates and again for ends (0: MAX_CALLS_PER_SECOND × KALLGLOT_REQUEST_TIMEOUT_MS, at least 64; 256 without a rate limit). Needed: calls per second × API latency',
    format: 'nat',
    default: 0,
    env: 'KALLGLOT_POOL_CONNECTIONS',
  },
  http2: {
    doc: 'Offer HTTP/2 to the Kallglot API (TLS ALPN; many requests share one connection). Only for an API that speaks it',
    format: 'boolean',
    default: false,
    env: 'KALLGLOT_HTTP2',
  },
  createResolveDelayMs: {
    doc: 'Wait before the first re-send of a Kallglot create whose outcome is unknown (timeout, reset, 500/502/504), with its Idempotency-Key, to end any session it made; doubles per try up to a minute. Recorded in the registry meanwhile: a restart resolves it',
    format: 'positive',
    default: 1000,
    env: 'KALLGLOT_CREATE_RESOLVE_DELAY_MS',
  },
} as const;
