/**
 * A small HTTP server for health, admin and webhook endpoints. node:http plus an exact-path router is all this needs;
 * handlers get the raw body bytes because webhook signatures are verified over them.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.ts';

export interface HttpRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  rawBody: Buffer;
  params: Record<string, string>;
}

export interface HttpResponse {
  status: number;
  body?: unknown;
  contentType?: string;
  headers?: Record<string, string>;
}

export type HttpHandler = (req: HttpRequest) => HttpResponse | Promise<HttpResponse>;

interface Route {
  method: string;
  parts: string[];
  handler: HttpHandler;
}

const MAX_BODY = 1024 * 1024;

export class HttpServer {
  readonly #routes: Route[] = [];
  #server: http.Server | undefined;
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Register a route; `:name` segments become params. */
  route(method: string, path: string, handler: HttpHandler): this {
    this.#routes.push({ method, parts: path.split('/').filter(Boolean), handler });
    return this;
  }

  async listen(port: number, host: string): Promise<number> {
    const server = http.createServer((req, res) => void this.#handle(req, res));
    this.#server = server;
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => resolve());
    });
    return (server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  #match(method: string, path: string): { route: Route; params: Record<string, string> } | 'method' | undefined {
    const parts = path.split('/').filter(Boolean);
    let pathMatched = false;
    for (const route of this.#routes) {
      if (route.parts.length !== parts.length) continue;
      const params: Record<string, string> = {};
      const ok = route.parts.every((p, i) => {
        if (p.startsWith(':')) {
          params[p.slice(1)] = decodeURIComponent(parts[i]);
          return true;
        }
        return p === parts[i];
      });
      if (!ok) continue;
      pathMatched = true;
      if (route.method === method) return { route, params };
    }
    return pathMatched ? 'method' : undefined;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    try {
      const found = this.#match(req.method ?? 'GET', url.pathname);
      if (found === undefined) return send(res, { status: 404, body: { error: 'not_found' } });
      if (found === 'method') return send(res, { status: 405, body: { error: 'method_not_allowed' } });
      const rawBody = await readBody(req);
      if (rawBody === undefined) return send(res, { status: 413, body: { error: 'body_too_large' } });
      const out = await found.route.handler({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: url.searchParams,
        headers: req.headers,
        rawBody,
        params: found.params,
      });
      send(res, out);
    } catch (err) {
      this.#logger.error({ err, path: url.pathname }, 'http handler failed');
      if (!res.headersSent) send(res, { status: 500, body: { error: 'internal_error' } });
    }
  }
}

async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function send(res: http.ServerResponse, out: HttpResponse): void {
  const headers: Record<string, string> = { ...out.headers };
  let payload: string | Buffer = '';
  if (out.body !== undefined) {
    if (typeof out.body === 'string' || Buffer.isBuffer(out.body)) {
      payload = out.body;
      headers['content-type'] = out.contentType ?? 'text/plain; charset=utf-8';
    } else {
      payload = JSON.stringify(out.body);
      headers['content-type'] = out.contentType ?? 'application/json';
    }
  }
  res.writeHead(out.status, headers);
  res.end(payload);
}
