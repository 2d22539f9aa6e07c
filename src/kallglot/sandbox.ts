/**
 * Local stand-in for the Kallglot REST API (`/v1/sessions…`), used when no API URL is configured and by tests.
 *
 * It mirrors the real API's shapes, auth, validation, idempotency and error bodies, and adds controls (as methods and
 * as an HTTP API under `/_sandbox/`, so a daemon in another process can be tested) to inject failures: error
 * statuses, Retry-After, latency and hung requests. The media stream endpoint (`…/connect`) is not implemented here.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createSecureServer } from 'node:http2';
import type { AddressInfo, Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { Logger } from '../logger.ts';
import { END_REASONS, type RequestStyle } from './types.ts';
import { HttpError, parseJsonObject, validateCreate } from './sandbox-validate.ts';
import { FailureRules, parseFailureSpec } from './sandbox-failures.ts';
import type { FailureSpec } from './sandbox-failures.ts';
import { readBody, routeOf, sendError, sendFailure, sendJson } from './sandbox-http.ts';

export type { FailureSpec, SandboxEndpoint } from './sandbox-failures.ts';

export interface KallglotSandboxOptions {
  /** When set, only this Bearer token is accepted; otherwise any non-empty Bearer token is. */
  apiKey?: string;
  /** Successful creates allowed before answering 402 insufficient_api_credits (default unlimited). */
  credits?: number;
  streamTokenTtlSec?: number;
  logger?: Logger;
  /** Serve HTTPS with HTTP/2 (and HTTP/1.1) by ALPN, with this PEM certificate and key: a client's allowH2 at work. */
  tls?: { cert: string; key: string };
}

export interface SandboxSessionRecord {
  id: string;
  mode: string;
  sourceLanguage: string | undefined;
  targetLanguage: string | undefined;
  /** The shape the request selected telephony with (KALLGLOT_REQUEST_STYLE); undefined: it sent neither. */
  requestStyle: RequestStyle | undefined;
  routing: Record<string, unknown> | undefined;
  provider: Record<string, unknown> | undefined;
  /** `routing.sip_uri` or `provider.sip_uri` as sent: the party Kallglot was asked to connect. */
  sipUri: string | undefined;
  recording: Record<string, unknown> | undefined;
  metadata: Record<string, unknown>;
  idempotencyKey: string | undefined;
  createdAt: string;
  endedAt?: string;
  endReason?: string;
  endCalls: number;
}

export interface SandboxStats {
  created: number;
  ended: number;
  createRequests: number;
  endRequests: number;
  getRequests: number;
}

interface StoredSession {
  record: SandboxSessionRecord;
  createdMs: number;
  endedMs?: number;
  streamToken: string;
  streamExpiresAt: string;
  fingerprint: string;
}

function rand(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

export class KallglotSandbox {
  readonly #opts: KallglotSandboxOptions;
  readonly #failures = new FailureRules();
  #sessions = new Map<string, StoredSession>();
  #byIdempotencyKey = new Map<string, string>();
  #stats: SandboxStats = { created: 0, ended: 0, createRequests: 0, endRequests: 0, getRequests: 0 };
  #server: Server | undefined;
  #host = '127.0.0.1';
  #port = 0;
  readonly #hung = new Set<ServerResponse>();
  readonly #tlsSockets = new Set<Socket>();
  readonly #delays = new Map<NodeJS.Timeout, (proceed: boolean) => void>();

  constructor(opts: KallglotSandboxOptions = {}) {
    this.#opts = opts;
  }

  async start(port = 0, host = '127.0.0.1'): Promise<{ url: string }> {
    if (this.#server !== undefined) throw new Error('sandbox already started');
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.#handle(req, res).catch((e: unknown) => {
        this.#opts.logger?.error({ err: e }, 'kallglot sandbox handler failed');
        if (!res.headersSent && !res.destroyed) sendError(res, 500, 'internal_error', 'Internal server error');
      });
    };
    // HTTP/2's compatibility API has the request/response shape the handler uses; the types differ only in name.
    const server = (
      this.#opts.tls
        ? createSecureServer({ ...this.#opts.tls, allowHTTP1: true }, handler as never)
        : createServer(handler)
    ) as Server;
    if (this.#opts.tls) {
      server.on('secureConnection', (socket: Socket) => {
        this.#tlsSockets.add(socket);
        socket.once('close', () => this.#tlsSockets.delete(socket));
      });
    }
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    this.#host = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
    return { url: this.url };
  }

  get url(): string {
    const host = this.#host.includes(':') ? `[${this.#host}]` : this.#host;
    return `${this.#opts.tls ? 'https' : 'http'}://${host}:${this.#port}/v1`;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    this.#releaseHeld();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections?.(); // an HTTP/2 server has none: its TLS sockets go instead
    for (const socket of this.#tlsSockets) socket.destroy();
    await closed;
  }

  injectFailure(spec: FailureSpec): void {
    this.#failures.add(spec);
  }

  clearFailures(): void {
    this.#failures.clear();
  }

  sessions(): SandboxSessionRecord[] {
    return [...this.#sessions.values()].map((s) => structuredClone(s.record));
  }

  stats(): SandboxStats {
    return { ...this.#stats };
  }

  /** Forget sessions, counters and failure rules; drop hung and delayed requests. */
  reset(): void {
    this.#failures.clear();
    this.#sessions = new Map();
    this.#byIdempotencyKey = new Map();
    this.#stats = { created: 0, ended: 0, createRequests: 0, endRequests: 0, getRequests: 0 };
    this.#releaseHeld();
  }

  #releaseHeld(): void {
    for (const [timer, resolve] of this.#delays) {
      clearTimeout(timer);
      resolve(false);
    }
    this.#delays.clear();
    for (const res of this.#hung) res.socket?.destroy();
    this.#hung.clear();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    res.setHeader('x-request-id', `req_${rand(8)}`);
    const path = new URL(req.url ?? '/', 'http://sandbox').pathname.replace(/\/+$/, '');
    const method = req.method ?? 'GET';
    const rawBody = await readBody(req);
    if (rawBody === undefined) return sendError(res, 413, 'request_too_large', 'Request body too large');
    if (path.startsWith('/_sandbox/')) return this.#control(method, path, rawBody, res);

    const endpoint = routeOf(method, path);
    if (endpoint === undefined) return sendError(res, 404, 'resource_not_found', `No route for ${method} ${path}`);
    if (endpoint.name === 'create') this.#stats.createRequests += 1;
    else if (endpoint.name === 'end') this.#stats.endRequests += 1;
    else this.#stats.getRequests += 1;

    const failure = this.#failures.take(endpoint.name);
    if (failure !== undefined) {
      if (failure.latencyMs !== undefined && failure.latencyMs > 0 && !(await this.#delay(failure.latencyMs))) return;
      if (failure.hang === true) {
        this.#hung.add(res);
        res.once('close', () => this.#hung.delete(res));
        return;
      }
      if (failure.status !== undefined) return sendFailure(res, failure);
    }
    // Like the real API, a request whose client gave up is still processed; only the answer is lost.

    try {
      this.#authenticate(req);
      if (endpoint.name === 'create') return this.#create(req, rawBody, res);
      const stored = this.#sessions.get(endpoint.id ?? '');
      if (stored === undefined)
        throw new HttpError(404, 'resource_not_found', `No such session: ${endpoint.id ?? ''}`, 'id');
      if (endpoint.name === 'end') this.#end(stored, rawBody);
      sendJson(res, 200, this.#sessionJson(stored));
    } catch (e) {
      if (!(e instanceof HttpError)) throw e;
      sendError(res, e.status, e.code, e.message, e.param);
    }
  }

  #delay(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#delays.delete(timer);
        resolve(true);
      }, ms);
      this.#delays.set(timer, resolve);
    });
  }

  #authenticate(req: IncomingMessage): void {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (m === null) throw new HttpError(401, 'invalid_api_key', 'Missing Bearer API key in Authorization header');
    if (this.#opts.apiKey !== undefined && m[1] !== this.#opts.apiKey) {
      throw new HttpError(401, 'invalid_api_key', 'Invalid API key');
    }
  }

  #create(req: IncomingMessage, rawBody: string, res: ServerResponse): void {
    const body = parseJsonObject(rawBody);
    const input = validateCreate(body);
    const keyHeader = req.headers['idempotency-key'];
    const key = Array.isArray(keyHeader) ? keyHeader[0] : keyHeader;
    const fingerprint = JSON.stringify(body);
    if (key !== undefined && key !== '') {
      const existingId = this.#byIdempotencyKey.get(key);
      const existing = existingId !== undefined ? this.#sessions.get(existingId) : undefined;
      if (existing !== undefined) {
        if (existing.fingerprint !== fingerprint) {
          throw new HttpError(409, 'idempotency_key_reused', 'Idempotency-Key was used with a different request body');
        }
        res.setHeader('idempotent-replayed', 'true');
        sendJson(res, 201, this.#sessionJson(existing));
        return;
      }
    }
    const credits = this.#opts.credits ?? Number.POSITIVE_INFINITY;
    if (this.#stats.created >= credits) throw new HttpError(402, 'insufficient_api_credits', 'API credits exhausted');
    const now = Date.now();
    const id = `sess_${rand(12)}`;
    const stored: StoredSession = {
      record: {
        id,
        mode: input.mode,
        sourceLanguage: input.sourceLanguage,
        targetLanguage: input.targetLanguage,
        requestStyle: input.requestStyle,
        routing: input.routing,
        provider: input.provider,
        sipUri: input.sipUri,
        recording: input.recording,
        metadata: input.metadata ?? {},
        idempotencyKey: key !== '' ? key : undefined,
        createdAt: new Date(now).toISOString(),
        endCalls: 0,
      },
      createdMs: now,
      streamToken: `kst_${rand(16)}`,
      streamExpiresAt: new Date(now + (this.#opts.streamTokenTtlSec ?? 300) * 1000).toISOString(),
      fingerprint,
    };
    this.#sessions.set(id, stored);
    if (key !== undefined && key !== '') this.#byIdempotencyKey.set(key, id);
    this.#stats.created += 1;
    if (Number.isFinite(credits)) res.setHeader('x-api-credits-remaining', String(credits - this.#stats.created));
    res.setHeader('x-api-credits-used', '1');
    sendJson(res, 201, this.#sessionJson(stored));
  }

  #end(stored: StoredSession, rawBody: string): void {
    const body = rawBody.trim() === '' ? {} : parseJsonObject(rawBody);
    const reason = body.reason ?? 'completed';
    if (typeof reason !== 'string' || !(END_REASONS as readonly string[]).includes(reason)) {
      throw new HttpError(400, 'invalid_field_value', `reason must be one of ${END_REASONS.join(', ')}`, 'reason');
    }
    stored.record.endCalls += 1;
    if (stored.endedMs !== undefined) return;
    stored.endedMs = Date.now();
    stored.record.endedAt = new Date(stored.endedMs).toISOString();
    stored.record.endReason = reason;
    this.#stats.ended += 1;
  }

  #sessionJson(s: StoredSession): Record<string, unknown> {
    const r = s.record;
    const json: Record<string, unknown> = {
      id: r.id,
      object: 'session',
      status: s.endedMs !== undefined ? 'ended' : 'created',
      mode: r.mode,
      source_language: r.sourceLanguage ?? null,
      target_language: r.targetLanguage ?? null,
      stream: {
        url: `ws://${this.#host}:${this.#port}/v1/sessions/${r.id}/connect`,
        token: s.streamToken,
        expires_at: s.streamExpiresAt,
      },
      // Responses name the provider as a string (current docs), whichever shape the request used.
      provider: r.provider !== undefined ? 'telnyx' : r.routing?.type === 'sip' ? 'sip' : null,
      routing: r.routing ?? null,
      recording: r.recording ?? { enabled: false },
      metadata: r.metadata,
      created_at: r.createdAt,
    };
    if (s.endedMs !== undefined) {
      json.ended_at = r.endedAt;
      json.end_reason = r.endReason;
      json.duration_seconds = Math.round((s.endedMs - s.createdMs) / 1000);
    }
    return json;
  }

  #control(method: string, path: string, rawBody: string, res: ServerResponse): void {
    const route = `${method} ${path}`;
    if (route === 'POST /_sandbox/failures') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(rawBody);
      } catch {
        sendError(res, 400, 'invalid_request', 'body must be JSON');
        return;
      }
      const spec = parseFailureSpec(parsed);
      if (typeof spec === 'string') {
        sendError(res, 400, 'invalid_request', spec);
        return;
      }
      this.injectFailure(spec);
      sendJson(res, 200, { ok: true });
      return;
    }
    if (route === 'DELETE /_sandbox/failures') {
      this.clearFailures();
      sendJson(res, 200, { ok: true });
      return;
    }
    if (route === 'GET /_sandbox/sessions') {
      sendJson(res, 200, this.sessions());
      return;
    }
    if (route === 'GET /_sandbox/stats') {
      sendJson(res, 200, this.stats());
      return;
    }
    if (route === 'POST /_sandbox/reset') {
      this.reset();
      sendJson(res, 200, { ok: true });
      return;
    }
    sendError(res, 404, 'resource_not_found', `No sandbox control route ${route}`);
  }
}
