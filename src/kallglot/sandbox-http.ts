/** HTTP plumbing of the Kallglot sandbox: routing, bounded body reading, and the API's JSON error shapes. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorDefaults } from './sandbox-failures.ts';
import type { FailureSpec, SandboxEndpoint } from './sandbox-failures.ts';

const MAX_BODY_BYTES = 1_000_000;

export function sendFailure(res: ServerResponse, f: FailureSpec): void {
  const status = f.status ?? 500;
  if (f.retryAfterSec !== undefined) res.setHeader('retry-after', String(f.retryAfterSec));
  if (f.rawBody !== undefined) {
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/plain' }).end(f.rawBody);
    return;
  }
  sendError(
    res,
    status,
    f.code ?? errorDefaults(status).code,
    errorDefaults(status).message,
    undefined,
    f.retryAfterSec,
  );
}

export function sendError(
  res: ServerResponse,
  status: number,
  code: string,
  message: string,
  param?: string,
  retryAfter?: number,
): void {
  const error: Record<string, unknown> = {
    type: errorDefaults(status).type,
    code,
    message,
    request_id: res.getHeader('x-request-id'),
  };
  if (param !== undefined) error.param = param;
  if (retryAfter !== undefined) error.retry_after = retryAfter;
  sendJson(res, status, { error });
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  if (res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

export function routeOf(method: string, path: string): { name: SandboxEndpoint; id?: string } | undefined {
  if (path === '/v1/sessions') return method === 'POST' ? { name: 'create' } : undefined;
  const m = /^\/v1\/sessions\/([^/]+)(\/end)?$/.exec(path);
  if (m === null) return undefined;
  const id = decodeURIComponent(m[1] ?? '');
  if (m[2] === '/end') return method === 'POST' ? { name: 'end', id } : undefined;
  return method === 'GET' ? { name: 'get', id } : undefined;
}

export function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
