/**
 * Failure injection for the Kallglot sandbox: which requests fail, how, and how often. Kept apart from the server so
 * the same rules serve the in-process methods and the `/_sandbox/failures` control API.
 */

export type SandboxEndpoint = 'create' | 'end' | 'get';

export interface FailureSpec {
  endpoint: SandboxEndpoint | 'any';
  /** HTTP status to answer with. Without status (and without hang) the request proceeds normally after `latencyMs`. */
  status?: number;
  /** Error code in the body; defaults from the status (429 → rate_limit_exceeded, 402 → insufficient_api_credits, …). */
  code?: string;
  retryAfterSec?: number;
  latencyMs?: number;
  /** Keep the socket open without answering (released by stop() or reset()). */
  hang?: boolean;
  /** Number of matching requests affected; unlimited until cleared when omitted. */
  times?: number;
  /** Send this text verbatim as the error body instead of the JSON error shape (to test non-JSON bodies). */
  rawBody?: string;
}

interface ActiveFailure {
  spec: FailureSpec;
  remaining: number;
}

const DEFAULTS: Record<number, { type: string; code: string; message: string }> = {
  400: { type: 'invalid_request_error', code: 'invalid_request', message: 'Invalid request' },
  401: { type: 'authentication_error', code: 'invalid_api_key', message: 'Invalid API key' },
  402: { type: 'billing_error', code: 'insufficient_api_credits', message: 'API credits exhausted' },
  403: { type: 'permission_error', code: 'organization_inactive', message: 'Organization is inactive' },
  404: { type: 'invalid_request_error', code: 'resource_not_found', message: 'Resource not found' },
  409: { type: 'invalid_request_error', code: 'conflict', message: 'Conflict' },
  422: { type: 'invalid_request_error', code: 'validation_failed', message: 'Validation failed' },
  429: { type: 'rate_limit_error', code: 'rate_limit_exceeded', message: 'Too many requests' },
  500: { type: 'api_error', code: 'internal_error', message: 'Internal server error' },
  501: { type: 'api_error', code: 'not_implemented', message: 'Not implemented' },
  502: { type: 'api_error', code: 'upstream_error', message: 'Upstream gateway error' },
  503: { type: 'api_error', code: 'service_unavailable', message: 'Service temporarily unavailable' },
};

export function errorDefaults(status: number): { type: string; code: string; message: string } {
  return (
    DEFAULTS[status] ??
    (status >= 500
      ? { type: 'api_error', code: `http_${status}`, message: 'Server error' }
      : { type: 'invalid_request_error', code: `http_${status}`, message: 'Request failed' })
  );
}

const ENDPOINTS = new Set(['create', 'end', 'get', 'any']);

/** Validates a failure spec from the control API; returns an error message or the spec. */
export function parseFailureSpec(value: unknown): FailureSpec | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'body must be a JSON object';
  const v = value as Record<string, unknown>;
  if (typeof v.endpoint !== 'string' || !ENDPOINTS.has(v.endpoint)) return 'endpoint must be create, end, get or any';
  const spec: FailureSpec = { endpoint: v.endpoint as FailureSpec['endpoint'] };
  const nat = (name: string, min: number, max: number): number | string | undefined => {
    const x = v[name];
    if (x === undefined || x === null) return undefined;
    if (typeof x !== 'number' || !Number.isInteger(x) || x < min || x > max)
      return `${name} must be an integer in ${min}..${max}`;
    return x;
  };
  const status = nat('status', 100, 599);
  if (typeof status === 'string') return status;
  if (status !== undefined) spec.status = status;
  const retryAfterSec = nat('retryAfterSec', 0, 86_400);
  if (typeof retryAfterSec === 'string') return retryAfterSec;
  if (retryAfterSec !== undefined) spec.retryAfterSec = retryAfterSec;
  const latencyMs = nat('latencyMs', 0, 600_000);
  if (typeof latencyMs === 'string') return latencyMs;
  if (latencyMs !== undefined) spec.latencyMs = latencyMs;
  const times = nat('times', 1, 1_000_000);
  if (typeof times === 'string') return times;
  if (times !== undefined) spec.times = times;
  if (v.code !== undefined) {
    if (typeof v.code !== 'string') return 'code must be a string';
    spec.code = v.code;
  }
  if (v.rawBody !== undefined) {
    if (typeof v.rawBody !== 'string') return 'rawBody must be a string';
    spec.rawBody = v.rawBody;
  }
  if (v.hang !== undefined) {
    if (typeof v.hang !== 'boolean') return 'hang must be a boolean';
    spec.hang = v.hang;
  }
  return spec;
}

export class FailureRules {
  #rules: ActiveFailure[] = [];

  add(spec: FailureSpec): void {
    this.#rules.push({ spec: { ...spec }, remaining: spec.times ?? Number.POSITIVE_INFINITY });
  }

  clear(): void {
    this.#rules = [];
  }

  /** The first rule for this endpoint with uses left, consuming one use. */
  take(endpoint: SandboxEndpoint): FailureSpec | undefined {
    const rule = this.#rules.find(
      (r) => r.remaining > 0 && (r.spec.endpoint === 'any' || r.spec.endpoint === endpoint),
    );
    if (rule === undefined) return undefined;
    rule.remaining -= 1;
    if (rule.remaining <= 0) this.#rules = this.#rules.filter((r) => r !== rule);
    return rule.spec;
  }
}
