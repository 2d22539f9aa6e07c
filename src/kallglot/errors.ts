/**
 * One error type for everything the Kallglot client can fail with, so call handling can decide "retry", "fall back
 * now" or "reject" from `status`/`code` alone.
 */

/** Codes produced by the client itself (no HTTP response, or an unusable one). */
export const LOCAL_ERROR_CODES = {
  timeout: 'timeout',
  networkError: 'network_error',
  deadlineExceeded: 'deadline_exceeded',
  invalidResponse: 'invalid_response',
  aborted: 'aborted',
  /** The attempt timed out while waiting for a connection of the client's own pool (KALLGLOT_POOL_CONNECTIONS). */
  poolExhausted: 'client_pool_exhausted',
} as const;

export interface KallglotErrorInit {
  status?: number;
  code: string;
  type?: string;
  param?: string;
  requestId?: string;
  retryAfterMs?: number;
  cause?: unknown;
}

export class KallglotError extends Error {
  /** HTTP status; undefined for network errors, timeouts and deadlines. */
  readonly status: number | undefined;
  readonly code: string;
  readonly type: string | undefined;
  readonly param: string | undefined;
  readonly requestId: string | undefined;
  readonly retryAfterMs: number | undefined;
  /**
   * Whether the request may have taken effect at Kallglot although it failed here: some attempt's answer was lost
   * (timeout, deadline, connection lost after sending) or the server failed mid-way (500/502/504). Set by the client
   * over all the attempts of one operation; what matters for creates, whose session may then exist unknown to us.
   */
  outcomeUnknown = false;

  constructor(message: string, init: KallglotErrorInit) {
    super(message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'KallglotError';
    this.status = init.status;
    this.code = init.code;
    this.type = init.type;
    this.param = init.param;
    this.requestId = init.requestId;
    this.retryAfterMs = init.retryAfterMs;
  }
}

export function isKallglotError(e: unknown): e is KallglotError {
  return e instanceof KallglotError;
}

export function isRateLimited(e: unknown): boolean {
  return isKallglotError(e) && (e.status === 429 || e.code === 'rate_limit_exceeded');
}

/**
 * Worth another attempt: the request may not have reached Kallglot or Kallglot failed transiently.
 * 501 means "never going to work"; other 4xx need the request or the account fixed.
 */
export function isRetryable(e: unknown): boolean {
  if (!isKallglotError(e)) return false;
  if (e.status === undefined) return e.code === LOCAL_ERROR_CODES.networkError || e.code === LOCAL_ERROR_CODES.timeout;
  if (e.status === 429) return true;
  return e.status >= 500 && e.status !== 501;
}

/** Credentials, credits or organization state: retrying cannot help, the call should fall back at once. */
export function isAccountProblem(e: unknown): boolean {
  return isKallglotError(e) && (e.status === 401 || e.status === 402 || e.status === 403);
}

/**
 * Failures of the connection itself (DNS, connect, TLS handshake): the request never left, nothing can have reached
 * Kallglot.
 */
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
]);

/**
 * One failed attempt may still have done its work at Kallglot (for a create: made a session nobody knows of).
 * - No answer after the request may have been written (attempt timeout, caller abort, connection reset, socket
 *   closed): unknown. A connection that was never made (NOT_SENT_CODES) or never granted (client pool) sent nothing.
 * - A 2xx whose body was not a session: Kallglot did something; unknown.
 * - 500, 502, 504 (and other 5xx but 501/503): the server or a proxy in front of it failed while the request was
 *   being handled, possibly after it was stored; unknown.
 * - 4xx: a refusal before anything was created (validation 400/422, authentication 401, credits 402, permission
 *   403, 404, 409 key conflict, 429 rate limit): known. 501 (never implemented) and 503 (temporary outage: refused
 *   at the door) too.
 */
export function attemptOutcomeUnknown(e: KallglotError): boolean {
  if (e.status !== undefined) {
    if (e.status >= 200 && e.status < 300) return true;
    return e.status >= 500 && e.status !== 501 && e.status !== 503;
  }
  if (e.code === LOCAL_ERROR_CODES.networkError) return !NOT_SENT_CODES.has(causeCode(e.cause));
  return (
    e.code === LOCAL_ERROR_CODES.timeout ||
    e.code === LOCAL_ERROR_CODES.deadlineExceeded ||
    e.code === LOCAL_ERROR_CODES.aborted
  );
}

/** The system or undici error code behind a network error (an AggregateError's first one: happy eyeballs). */
function causeCode(cause: unknown): string {
  if (typeof cause !== 'object' || cause === null) return '';
  const code = (cause as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const errors = (cause as { errors?: unknown }).errors;
  return Array.isArray(errors) && errors.length > 0 ? causeCode(errors[0]) : '';
}
