/**
 * The Kallglot client's pools: their size from the rate limit, a request that finds every connection busy is known
 * to have queued (and reports its wait once it gets one), creates never queue behind ends, and a create that times
 * out still waiting for a connection fails with the pool's own code and a log line, not as a slow API.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { KallglotClient } from '../../src/kallglot/client.ts';
import type { KallglotError } from '../../src/kallglot/errors.ts';
import { poolConnections, RequestPool } from '../../src/kallglot/pool.ts';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

describe('poolConnections', () => {
  it('takes the configured size, else rate limit × attempt timeout with a floor, else a fixed size', () => {
    expect(poolConnections({ configured: 12, maxCallsPerSecond: 500, requestTimeoutMs: 1500 })).toBe(12);
    expect(poolConnections({ configured: 0, maxCallsPerSecond: 250, requestTimeoutMs: 1500 })).toBe(375);
    expect(poolConnections({ configured: 0, maxCallsPerSecond: 30, requestTimeoutMs: 1500 })).toBe(64);
    expect(poolConnections({ configured: 0, maxCallsPerSecond: 0, requestTimeoutMs: 1500 })).toBe(256);
  });
});

/** A server that holds every request until the test releases it. */
async function holdingServer(): Promise<{ url: string; held: ServerResponse[]; arrived: () => number }> {
  const held: ServerResponse[] = [];
  let arrived = 0;
  const server: Server = createServer((_req: IncomingMessage, res: ServerResponse) => {
    arrived++;
    held.push(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(async () => {
    for (const res of held) res.destroy();
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, held, arrived: () => arrived };
}

async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(cond()).toBe(true);
}

describe('RequestPool', () => {
  it('knows a request queued when every connection was busy, and when it got one', async () => {
    const srv = await holdingServer();
    const pool = new RequestPool({ name: 'create', pool: { connections: 1, http2: false } });
    closers.push(() => pool.close());
    const first = pool.enter();
    const a = request(`${srv.url}/a`, { dispatcher: first.dispatcher });
    await until(() => srv.arrived() === 1);
    expect(first.queued).toBe(false);
    expect(first.waitedMs()).toBeGreaterThanOrEqual(0);

    const second = pool.enter();
    const b = request(`${srv.url}/b`, { dispatcher: second.dispatcher });
    expect(second.queued).toBe(true);
    expect(second.waitedMs()).toBeUndefined(); // still in undici's queue: the only connection is busy
    srv.held[0]!.end('a');
    await (await a).body.text();
    first.leave();
    await until(() => srv.arrived() === 2);
    expect(second.waitedMs()).toBeGreaterThanOrEqual(0);
    srv.held[1]!.end('b');
    await (await b).body.text();
    second.leave();
    const third = pool.enter();
    expect(third.queued).toBe(false); // both left: the connection is free again
    third.leave();
  });
});

function logSink(): { logger: pino.Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, stream), lines };
}

const input = (n: number) => ({
  mode: 'bidirectional_translation' as const,
  sourceLanguage: 'de',
  targetLanguage: 'en',
  routing: { type: 'sip' as const, direction: 'inbound' as const },
  metadata: {},
  idempotencyKey: `pool-test-${n}-${Date.now()}`,
});

describe('KallglotClient pools', () => {
  it('a create that never got a connection fails as client_pool_exhausted, counted and logged', async () => {
    const sandbox = new KallglotSandbox();
    const { url } = await sandbox.start(0);
    closers.push(() => sandbox.stop());
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 150 });
    const { logger, lines } = logSink();
    const waits: Array<{ op: string; seconds: number; queued: boolean }> = [];
    const client = new KallglotClient({
      baseUrl: url,
      apiKey: 'sk_test_pool',
      requestTimeoutMs: 500,
      retries: 0,
      createDeadlineMs: 500,
      pool: { connections: 1, http2: false },
      logger,
      onPoolWait: (op, seconds, queued) => waits.push({ op, seconds, queued }),
    });
    closers.push(() => client.close());
    // One connection, 150 ms per create, 500 ms each: the first are served in turn, the last never get a connection.
    const results = await Promise.allSettled([1, 2, 3, 4, 5, 6].map((n) => client.createSession(input(n))));
    expect(results[0]!.status).toBe('fulfilled');
    const last = results[5]!;
    expect(last.status).toBe('rejected');
    const err = (last as PromiseRejectedResult).reason as KallglotError;
    expect(err.code).toBe('client_pool_exhausted');
    expect(err.message).toContain('KALLGLOT_POOL_CONNECTIONS');
    expect(waits.filter((w) => w.queued).length).toBeGreaterThanOrEqual(5);
    expect(waits.some((w) => w.queued && Number.isFinite(w.seconds))).toBe(true); // queued, then served
    expect(waits.some((w) => w.queued && Number.isNaN(w.seconds))).toBe(true); // queued, never served
    const warn = lines.find((l) => String(l.msg).startsWith('Kallglot requests waited for a free connection'));
    expect(warn).toMatchObject({ pool: 'create', connections: 1 });
  });

  it('creates do not queue behind ends: each has its own pool', async () => {
    const srv = await holdingServer();
    const waits: Array<{ op: string; queued: boolean }> = [];
    const client = new KallglotClient({
      baseUrl: `${srv.url}/v1`,
      apiKey: 'sk_test_pool',
      requestTimeoutMs: 5000,
      retries: 0,
      pool: { connections: 1, http2: false },
      onPoolWait: (op, _s, queued) => waits.push({ op, queued }),
    });
    closers.push(async () => {
      for (const res of srv.held) res.destroy();
      await client.close();
    });
    const end = client.endSession('sess_1', 'completed').catch((e: unknown) => e);
    await until(() => srv.arrived() === 1);
    const create = client.createSession(input(7)).catch((e: unknown) => e);
    await until(() => srv.arrived() === 2); // reached the server while the end still holds its pool's connection
    for (const res of srv.held) res.writeHead(500).end('{}');
    await Promise.all([end, create]);
    expect(waits.filter((w) => w.queued)).toEqual([]);
  });
});
