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
