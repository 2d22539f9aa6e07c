/**
 * A local stand-in for the Telnyx REST API (v2) that the real `telnyx` SDK talks to (TELNYX_BASE_URL): it records
 * every request and answers the dial and every call action, or fails the actions a test names.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

export class FakeTelnyx {
  readonly requests: RecordedRequest[] = [];
  /**
   * Call actions (`answer`, `streaming_start`, `transfer`, …) answered with this HTTP status and a Telnyx error body.
   * Use a status the SDK does not retry (422), or expect two requests.
   */
  readonly failActions = new Map<string, number>();
  #server = http.createServer((req, res) => void this.#handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v2`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections();
    });
  }

  /** Requests for one call action (`answer`, `transfer`, …), in order; all calls unless a call_control_id is given. */
  actions(action: string, callControlId?: string): RecordedRequest[] {
    return this.requests.filter((r) => {
      const m = /^\/v2\/calls\/([^/]+)\/actions\/([a-z_]+)$/.exec(r.path);
      return m?.[2] === action && (callControlId === undefined || m[1] === callControlId);
    });
  }

  /** The action names requested, in order (`['answer', 'streaming_start']`). */
  actionNames(): string[] {
    return this.requests.map((r) => /\/actions\/([a-z_]+)$/.exec(r.path)?.[1] ?? r.path);
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    const path = decodeURIComponent(req.url ?? '');
    this.requests.push({ method: req.method ?? '', path, headers: req.headers, body });
    const json = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    const action = req.method === 'POST' ? /^\/v2\/calls\/[^/]+\/actions\/([a-z_]+)$/.exec(path)?.[1] : undefined;
    if (!action) return json(404, { errors: [{ code: '404', title: 'not found' }] });
    const failure = this.failActions.get(action);
    if (failure) return json(failure, { errors: [{ code: '90018', title: 'Call has already ended' }] });
    json(200, { data: { result: 'ok' } });
  }
}
