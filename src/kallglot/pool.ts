/**
 * The Kallglot client's connection pools, and how long each request waited for a connection.
 *
 * Sizing: the connections busy at once are requests per second × API latency (Little's law). A request that finds
 * them all busy waits in undici's queue, and since the create's deadline includes that wait, a slow API used to turn
 * translated calls into fallbacks at 64 connections ÷ 300 ms ≈ 210 requests/s with nothing saying why. So:
 *  - creates get a pool of their own: ends (which can come in bursts, e.g. after an outage) never hold up a call;
 *  - each pool allows rate limit × attempt timeout connections by default, the most a rate-limited gateway can keep
 *    busy before its attempts time out anyway. undici opens connections only when needed, so a large cap costs
 *    nothing while the API is fast;
 *  - every request reports its wait (from dispatch until undici starts writing it), so a pool that is still too
 *    small shows in a metric and a log line, and a create that never got a connection fails with its own code.
 */
import { performance } from 'node:perf_hooks';
import { Agent, type Dispatcher } from 'undici';
import type { Logger } from '../logger.ts';

/** undici's default stream limit per HTTP/2 connection, when the server announces none lower. */
const H2_STREAMS_PER_CONNECTION = 100;
/** At most one "waited for a connection" line per this interval, with the count since the previous one. */
const QUEUED_LOG_INTERVAL_MS = 10_000;

/** Without a rate limit there is no rate to size from: room for 250 calls/s at a 1 s API latency. */
const UNLIMITED_RATE_CONNECTIONS = 256;
const MIN_CONNECTIONS = 64;

export interface PoolSizing {
  /** KALLGLOT_POOL_CONNECTIONS; 0: derived. */
  configured: number;
  /** MAX_CALLS_PER_SECOND; 0: no limit. */
  maxCallsPerSecond: number;
  requestTimeoutMs: number;
}

/** Connections per pool: the configured number, or rate limit × attempt timeout (at least 64). */
export function poolConnections(s: PoolSizing): number {
  if (s.configured > 0) return s.configured;
  if (s.maxCallsPerSecond <= 0) return UNLIMITED_RATE_CONNECTIONS;
  return Math.max(MIN_CONNECTIONS, Math.ceil((s.maxCallsPerSecond * s.requestTimeoutMs) / 1000));
}

export interface PoolOptions {
  connections: number;
  /** Offer HTTP/2 by ALPN: over TLS, requests then share connections (up to the server's stream limit each). */
  http2: boolean;
}

export function createAgent(o: PoolOptions): Agent {
  return new Agent({
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    connections: o.connections,
    allowH2: o.http2,
  });
}

type Handler = Dispatcher.DispatchHandler;

/** Forwards every callback of a request's handler; notes when undici starts the request on a connection. */
class StartNotingHandler implements Handler {
  readonly #inner: Handler;
  readonly #onStart: () => void;

  constructor(inner: Handler, onStart: () => void) {
    this.#inner = inner;
    this.#onStart = onStart;
  }

  onRequestStart(controller: Dispatcher.DispatchController, context: unknown): void {
    this.#onStart();
    this.#inner.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(...args: Parameters<NonNullable<Handler['onRequestUpgrade']>>): void {
    this.#inner.onRequestUpgrade?.(...args);
  }

  onResponseStart(...args: Parameters<NonNullable<Handler['onResponseStart']>>): void {
    this.#inner.onResponseStart?.(...args);
  }

  onResponseData(...args: Parameters<NonNullable<Handler['onResponseData']>>): void {
    this.#inner.onResponseData?.(...args);
  }

  onResponseEnd(...args: Parameters<NonNullable<Handler['onResponseEnd']>>): void {
    this.#inner.onResponseEnd?.(...args);
  }

  onResponseError(...args: Parameters<NonNullable<Handler['onResponseError']>>): void {
    this.#inner.onResponseError?.(...args);
  }
}

/**
 * A view of `dispatcher` for one request: undici's request() only calls `dispatch` on it, which hands the request to
 * the real pool with a handler that reports when it left the queue (`onStart`, once).
 */
export function noteStart(dispatcher: Dispatcher, onStart: () => void): Dispatcher {
  const view = {
    dispatch: (opts: Dispatcher.DispatchOptions, handler: Handler): boolean =>
      dispatcher.dispatch(opts, new StartNotingHandler(handler, onStart)),
  };
  return view as unknown as Dispatcher;
}

/** One request's passage through a pool. */
export interface PoolTicket {
  /** Hand this to undici's request(). */
  dispatcher: Dispatcher;
  /** Every connection of the pool was busy when the request came: it waited in undici's queue. */
  queued: boolean;
  /** ms from dispatch until undici started it on a connection (queue and connect); undefined while it has not. */
  waitedMs(): number | undefined;
  /** The request is over, answered or not (call once). */
  leave(): void;
}

export interface RequestPoolOptions {
  /** For the log line: which requests use this pool (`create`, `end/get`). */
  name: string;
  /** Use this dispatcher instead of an owned Agent (tests); it is then not closed here. */
  dispatcher?: Dispatcher;
  pool: PoolOptions;
  logger?: Logger;
}

/** A dispatcher with the count of requests it carries, so a request knows whether it had to queue. */
export class RequestPool {
  readonly #name: string;
  readonly #dispatcher: Dispatcher;
  readonly #owned: Agent | undefined;
  readonly #connections: number;
  readonly #capacity: number;
  readonly #logger: Logger | undefined;
  #inflight = 0;
  #queuedSinceLog = { count: 0, maxWaitMs: 0, nextLogAt: Number.NEGATIVE_INFINITY };

  constructor(o: RequestPoolOptions) {
    this.#name = o.name;
    this.#owned = o.dispatcher === undefined ? createAgent(o.pool) : undefined;
    this.#dispatcher = o.dispatcher ?? (this.#owned as Agent);
    this.#connections = o.pool.connections;
    this.#capacity = o.pool.connections * (o.pool.http2 ? H2_STREAMS_PER_CONNECTION : 1);
    this.#logger = o.logger;
  }

  enter(): PoolTicket {
    const queued = this.#inflight >= this.#capacity;
    this.#inflight++;
    const dispatchedAt = performance.now();
    let waited: number | undefined;
    let left = false;
    return {
      dispatcher: noteStart(this.#dispatcher, () => {
        waited ??= performance.now() - dispatchedAt;
      }),
      queued,
      waitedMs: () => waited,
      leave: () => {
        if (left) return;
        left = true;
        this.#inflight--;
        if (queued) this.#noteQueued(waited ?? performance.now() - dispatchedAt);
      },
    };
  }

  /** Waits for in-flight requests, then closes the connections (owned Agent only). */
  async close(): Promise<void> {
    if (this.#owned !== undefined && !this.#owned.closed) await this.#owned.close();
  }

  #noteQueued(waitMs: number): void {
    const q = this.#queuedSinceLog;
    q.count++;
    q.maxWaitMs = Math.max(q.maxWaitMs, waitMs);
    const now = performance.now();
    if (now < q.nextLogAt) return;
    this.#logger?.warn(
      { requests: q.count, maxWaitMs: Math.round(q.maxWaitMs), pool: this.#name, connections: this.#connections },
      'Kallglot requests waited for a free connection of the client pool: raise KALLGLOT_POOL_CONNECTIONS',
    );
    this.#queuedSinceLog = { count: 0, maxWaitMs: 0, nextLogAt: now + QUEUED_LOG_INTERVAL_MS };
  }
}
