/**
 * HTTP client for the Kallglot REST API.
 *
 * Call setup waits on `createSession`, so every operation runs under an overall deadline: attempts time out
 * individually, retryable failures back off with full jitter (or `Retry-After` on 429), and nothing ever waits past the
 * deadline — the caller gets an error in time to fall back. Creates reuse one Idempotency-Key across attempts, so a
 * retry after a lost response returns the same session instead of billing a second one.
 */
import { request } from 'undici';
import type { Dispatcher } from 'undici';
import type { Logger } from '../logger.ts';
import { KallglotError, LOCAL_ERROR_CODES, attemptOutcomeUnknown, isRetryable } from './errors.ts';
import { buildCreateSessionBody, parseSession } from './types.ts';
import type { CreateSessionInput, EndReason, KallglotSession } from './types.ts';
import { isObject, safeJson } from '../json.ts';
import { type PoolOptions, type PoolTicket, RequestPool } from './pool.ts';

export interface KallglotClientOptions {
  /** e.g. `https://api.kallglot.com/v1` or `http://127.0.0.1:PORT/v1`. */
  baseUrl: string;
  apiKey: string;
  /** Timeout of one HTTP attempt. */
  requestTimeoutMs: number;
  /** Extra attempts after the first, for retryable errors only. */
  retries: number;
  /** Overall budget of `createSession`, retries and waits included. */
  createDeadlineMs?: number;
  /** Overall budget of `endSession` and `getSession`. */
  endDeadlineMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** Already bound to its component by the caller (app.ts: `component: 'kallglot'`); the client binds none. */
  logger?: Logger;
  /** Use this dispatcher instead of client-owned keep-alive pools (it is then not closed by `close()`). */
  dispatcher?: Dispatcher;
  /** The client-owned pools, one for creates and one for ends and gets (default 64 connections each, HTTP/1.1). */
  pool?: PoolOptions;
  /** Per HTTP attempt that waited (got a connection, or queued): seconds until it got one (NaN: never), pool full. */
  onPoolWait?: (op: 'create' | 'get' | 'end', seconds: number, queued: boolean) => void;
  userAgent?: string;
  /** Called after every HTTP attempt (metrics): the HTTP status, or the local error code when there was none. */
  onAttempt?: (op: 'create' | 'get' | 'end', statusOrCode: number | string, seconds: number) => void;
}

export interface RequestOptions {
  signal?: AbortSignal;
}

export interface CreateOptions extends RequestOptions {
  /**
   * Not for a call waiting on it (the resolution of a create whose outcome is unknown): through the end/get pool,
   * so it never takes a connection a call's create needs, and under the end deadline.
   */
  background?: boolean;
}

interface CallSpec {
  op: 'create' | 'get' | 'end';
  method: 'GET' | 'POST';
  path: string;
  body?: unknown;
  idempotencyKey?: string;
  deadlineMs: number;
  signal?: AbortSignal;
  /** Which client pool: creates have their own (call setup), everything else shares the other. */
  pool: 'create' | 'other';
}

const DEFAULT_CREATE_DEADLINE_MS = 2000;
const DEFAULT_END_DEADLINE_MS = 10_000;

export class KallglotClient {
  readonly #baseUrl: string;
  readonly #apiKey: string;
  readonly #requestTimeoutMs: number;
  readonly #retries: number;
  readonly #createDeadlineMs: number;
  readonly #endDeadlineMs: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #logger: Logger | undefined;
  /** Creates have a pool of their own: a burst of ends never delays a call's setup. */
  readonly #pools: { create: RequestPool; other: RequestPool };
  readonly #onPoolWait: KallglotClientOptions['onPoolWait'];
  readonly #userAgent: string;
  readonly #onAttempt: KallglotClientOptions['onAttempt'];

  constructor(opts: KallglotClientOptions) {
    const url = new URL(opts.baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`Kallglot baseUrl must be http(s): ${url.protocol}`);
    }
    this.#baseUrl = url.toString().replace(/\/+$/, '');
    this.#apiKey = opts.apiKey;
    this.#requestTimeoutMs = opts.requestTimeoutMs;
    this.#retries = Math.max(0, Math.floor(opts.retries));
    this.#createDeadlineMs = opts.createDeadlineMs ?? DEFAULT_CREATE_DEADLINE_MS;
    this.#endDeadlineMs = opts.endDeadlineMs ?? DEFAULT_END_DEADLINE_MS;
    this.#backoffBaseMs = opts.backoffBaseMs ?? 100;
    this.#backoffMaxMs = opts.backoffMaxMs ?? 2000;
    this.#logger = opts.logger;
    this.#onAttempt = opts.onAttempt;
    this.#userAgent = opts.userAgent ?? 'kallglot-sip-gateway';
    this.#onPoolWait = opts.onPoolWait;
    const pool = opts.pool ?? { connections: 64, http2: false };
    const common = { pool, logger: opts.logger, ...(opts.dispatcher !== undefined && { dispatcher: opts.dispatcher }) };
    this.#pools = {
      create: new RequestPool({ name: 'create', ...common }),
      other: new RequestPool({ name: 'end/get', ...common }),
    };
  }

  /** A failure whose `outcomeUnknown` is true may have made the session all the same (sessions/create-resolver.ts). */
  async createSession(input: CreateSessionInput, opts: CreateOptions = {}): Promise<KallglotSession> {
    if (input.idempotencyKey === '') throw new TypeError('createSession needs a non-empty idempotencyKey');
    const spec: CallSpec = {
      op: 'create',
      method: 'POST',
      path: '/sessions',
      body: buildCreateSessionBody(input),
      idempotencyKey: input.idempotencyKey,
      deadlineMs: opts.background ? this.#endDeadlineMs : this.#createDeadlineMs,
      pool: opts.background ? 'other' : 'create',
    };
    if (opts.signal !== undefined) spec.signal = opts.signal;
    return this.#call(spec);
  }

  async getSession(id: string, opts: RequestOptions = {}): Promise<KallglotSession> {
    const spec: CallSpec = {
      op: 'get',
      method: 'GET',
      path: `/sessions/${encodeURIComponent(id)}`,
      deadlineMs: this.#endDeadlineMs,
      pool: 'other',
    };
    if (opts.signal !== undefined) spec.signal = opts.signal;
    return this.#call(spec);
  }

  /** Idempotent on the server: ending an ended session returns its existing summary. */
  async endSession(id: string, reason: EndReason, opts: RequestOptions = {}): Promise<KallglotSession> {
    const spec: CallSpec = {
      op: 'end',
      method: 'POST',
      path: `/sessions/${encodeURIComponent(id)}/end`,
      body: { reason },
      deadlineMs: this.#endDeadlineMs,
      pool: 'other',
    };
    if (opts.signal !== undefined) spec.signal = opts.signal;
    return this.#call(spec);
  }

  /** Closes the client-owned connection pools (waits for in-flight requests). */
  async close(): Promise<void> {
    await Promise.all([this.#pools.create.close(), this.#pools.other.close()]);
  }

  async #call(spec: CallSpec): Promise<KallglotSession> {
    const deadlineAt = performance.now() + spec.deadlineMs;
    let lastError: KallglotError | undefined;
    // Whether any attempt may have taken effect: told to the caller on the error it finally gets.
    let unknown = false;
    const fail = (e: KallglotError): KallglotError => {
      e.outcomeUnknown = unknown;
      return e;
    };
    for (let attempt = 0; ; attempt++) {
      const remaining = deadlineAt - performance.now();
      if (remaining <= 0) throw fail(lastError ?? deadlineError(spec));
      // The last attempt is cut short by the deadline rather than allowed its full timeout.
      const clipped = remaining < this.#requestTimeoutMs;
      const started = performance.now();
      let err: KallglotError;
      try {
        const session = await this.#attempt(spec, Math.min(this.#requestTimeoutMs, remaining));
        this.#logger?.debug(
          { op: spec.op, attempt, sessionId: session.id, ms: Math.round(performance.now() - started) },
          'kallglot request ok',
        );
        this.#onAttempt?.(spec.op, 200, (performance.now() - started) / 1000);
        return session;
      } catch (e) {
        err = this.#attemptFailed(spec, attempt, started, e);
      }
      unknown ||= attemptOutcomeUnknown(err);
      if (err.code === LOCAL_ERROR_CODES.aborted) throw fail(err);
      if (err.code === LOCAL_ERROR_CODES.timeout && clipped) throw fail(lastError ?? deadlineError(spec, err));
      lastError = err;
      if (!isRetryable(err) || attempt >= this.#retries) throw fail(err);
      const waitMs = err.retryAfterMs ?? this.#backoff(attempt);
      if (performance.now() + waitMs >= deadlineAt) {
        this.#logger?.debug({ op: spec.op, attempt, waitMs }, 'kallglot retry would pass the deadline');
        throw fail(err);
      }
      await sleep(waitMs, spec.signal).catch((e: unknown) => {
        throw e instanceof KallglotError ? fail(e) : e;
      });
    }
  }

  /** One attempt's failure as a KallglotError, logged and counted. */
  #attemptFailed(spec: CallSpec, attempt: number, started: number, e: unknown): KallglotError {
    const err =
      e instanceof KallglotError ? e : new KallglotError(String(e), { code: LOCAL_ERROR_CODES.networkError, cause: e });
    this.#logger?.debug(
      {
        op: spec.op,
        attempt,
        status: err.status,
        code: err.code,
        requestId: err.requestId,
        ms: Math.round(performance.now() - started),
      },
      'kallglot request failed',
    );
    this.#onAttempt?.(spec.op, err.status ?? err.code, (performance.now() - started) / 1000);
    return err;
  }

  #backoff(attempt: number): number {
    return Math.random() * Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** attempt);
  }

  async #attempt(spec: CallSpec, timeoutMs: number): Promise<KallglotSession> {
    const { status, headers, text } = await this.#send(spec, timeoutMs);
    const requestId = header(headers, 'x-request-id');
    if (status >= 200 && status < 300) {
      const session = parseSession(safeJson(text));
      if (session === undefined) {
        throw new KallglotError(`Kallglot ${spec.op} returned ${status} without a session body`, {
          status,
          code: LOCAL_ERROR_CODES.invalidResponse,
          ...(requestId !== undefined && { requestId }),
        });
      }
      return session;
    }
    throw errorFromResponse(spec.op, status, headers, text);
  }

  /** One HTTP exchange within `timeoutMs`, through the operation's pool. */
  async #send(spec: CallSpec, timeoutMs: number): Promise<HttpAnswer> {
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(), timeoutMs);
    const signal = spec.signal !== undefined ? AbortSignal.any([spec.signal, timeout.signal]) : timeout.signal;
    const headers: Record<string, string> = {
      authorization: `Bearer ${this.#apiKey}`,
      accept: 'application/json',
      'user-agent': this.#userAgent,
    };
    if (spec.idempotencyKey !== undefined) headers['idempotency-key'] = spec.idempotencyKey;
    const body = spec.body !== undefined ? JSON.stringify(spec.body) : undefined;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const ticket = this.#pools[spec.pool].enter();
    try {
      if (spec.signal?.aborted) throw spec.signal.reason;
      const res = await request(`${this.#baseUrl}${spec.path}`, {
        method: spec.method,
        headers,
        body,
        signal,
        dispatcher: ticket.dispatcher,
      });
      return { status: res.statusCode, headers: res.headers, text: await res.body.text() };
    } catch (e) {
      throw sendError(spec, e, timeout.signal.aborted, timeoutMs, ticket);
    } finally {
      clearTimeout(timer);
      ticket.leave();
      const waited = ticket.waitedMs();
      if (waited !== undefined || ticket.queued)
        this.#onPoolWait?.(spec.op, (waited ?? Number.NaN) / 1000, ticket.queued);
    }
  }
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/** Why an exchange produced no answer. A timeout before any connection was free is the pool's, not the API's. */
function sendError(
  spec: CallSpec,
  e: unknown,
  timedOut: boolean,
  timeoutMs: number,
  ticket: PoolTicket,
): KallglotError {
  if (spec.signal?.aborted) {
    return new KallglotError(`Kallglot ${spec.op} aborted by caller`, { code: LOCAL_ERROR_CODES.aborted, cause: e });
  }
  if (timedOut && ticket.queued && ticket.waitedMs() === undefined) {
    return new KallglotError(
      `Kallglot ${spec.op} waited ${Math.round(timeoutMs)} ms for a free connection of the client pool (KALLGLOT_POOL_CONNECTIONS)`,
      { code: LOCAL_ERROR_CODES.poolExhausted },
    );
  }
  if (timedOut) {
    return new KallglotError(`Kallglot ${spec.op} attempt timed out after ${Math.round(timeoutMs)} ms`, {
      code: LOCAL_ERROR_CODES.timeout,
    });
  }
  return new KallglotError(`Kallglot ${spec.op} network error: ${errorMessage(e)}`, {
    code: LOCAL_ERROR_CODES.networkError,
    cause: e,
  });
}

function deadlineError(spec: CallSpec, cause?: unknown): KallglotError {
  return new KallglotError(`Kallglot ${spec.op} did not complete within ${spec.deadlineMs} ms`, {
    code: LOCAL_ERROR_CODES.deadlineExceeded,
    ...(cause !== undefined && { cause }),
  });
}

function errorFromResponse(
  op: string,
  status: number,
  headers: Record<string, string | string[] | undefined>,
  text: string,
): KallglotError {
  const parsed = safeJson(text);
  const body = isObject(parsed) && isObject(parsed.error) ? parsed.error : undefined;
  const code = typeof body?.code === 'string' && body.code !== '' ? body.code : `http_${status}`;
  const message = typeof body?.message === 'string' ? body.message : `HTTP ${status}`;
  const requestId =
    header(headers, 'x-request-id') ?? (typeof body?.request_id === 'string' ? body.request_id : undefined);
  let retryAfterMs = parseRetryAfter(header(headers, 'retry-after'));
  if (retryAfterMs === undefined && typeof body?.retry_after === 'number' && body.retry_after >= 0) {
    retryAfterMs = body.retry_after * 1000;
  }
  return new KallglotError(`Kallglot ${op} failed: ${status} ${code}: ${message}`, {
    status,
    code,
    ...(typeof body?.type === 'string' && { type: body.type }),
    ...(typeof body?.param === 'string' && { param: body.param }),
    ...(requestId !== undefined && { requestId }),
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
}

/** `Retry-After` is delta-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Number(trimmed) * 1000;
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function errorMessage(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code} ${e.message}` : e.message;
  }
  return String(e);
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new KallglotError('Kallglot request aborted by caller', { code: LOCAL_ERROR_CODES.aborted }));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new KallglotError('Kallglot request aborted by caller', { code: LOCAL_ERROR_CODES.aborted }));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
