import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KallglotProbe, type ProbeResult } from '../../src/kallglot/probe.ts';
import { freePort } from '../helpers/ports.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An HTTP server answering every request with `status` (or never, for 0); counts requests and their headers. */
async function server(status: number): Promise<{ url: string; requests: http.IncomingHttpHeaders[] }> {
  const requests: http.IncomingHttpHeaders[] = [];
  const s = http.createServer((req, res) => {
    requests.push(req.headers);
    if (status === 0) return; // hang
    res.writeHead(status, { 'content-type': 'application/json' }).end('{"error":{"code":"x"}}');
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        s.close(() => resolve());
        s.closeAllConnections();
      }),
  );
  return { url: `http://127.0.0.1:${(s.address() as AddressInfo).port}/v1`, requests };
}

function probe(baseUrl: string, onResult?: (r: ProbeResult) => void): KallglotProbe {
  const p = new KallglotProbe({ baseUrl, intervalMs: 60_000, timeoutMs: 300, onResult });
  cleanups.push(() => p.stop());
  return p;
}

describe('KallglotProbe', () => {
  it('counts any HTTP answer below 500 as reachable (404 and 401 are what a healthy API says to its base URL)', async () => {
    for (const status of [200, 401, 404]) {
      const { url, requests } = await server(status);
      const result = await probe(url).probe();
      expect(result).toMatchObject({ reachable: true, status });
      expect(result.error).toBeUndefined();
      // The probe sends no API key: it needs none.
      expect(requests[0]?.authorization).toBeUndefined();
    }
  });

  it('counts 5xx, refused connections and timeouts as down, with the reason', async () => {
    const { url } = await server(503);
    expect(await probe(url).probe()).toMatchObject({ reachable: false, status: 503, error: 'http_503' });

    const closed = await freePort('tcp');
    expect(await probe(`http://127.0.0.1:${closed}/v1`).probe()).toMatchObject({
      reachable: false,
      error: 'ECONNREFUSED',
    });

    const hanging = await server(0);
    const timedOut = await probe(hanging.url).probe();
    expect(timedOut).toMatchObject({ reachable: false, error: 'timeout' });
    expect(timedOut.status).toBeUndefined();
  });

  it('probes once at start and then only on its timer: reading the result never causes a request', async () => {
    const { url, requests } = await server(404);
    const results: ProbeResult[] = [];
    const p = probe(url, (r) => results.push(r));
    expect(p.current()).toBeUndefined();
    p.start();
    p.start(); // idempotent
    for (let i = 0; i < 100 && results.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    for (let i = 0; i < 50; i++) expect(p.current()?.reachable).toBe(true);
    expect(requests).toHaveLength(1);
    expect(results).toHaveLength(1);
  });

  it('shares one request between concurrent probe() calls', async () => {
    const { url, requests } = await server(404);
    const p = probe(url);
    const [a, b] = await Promise.all([p.probe(), p.probe()]);
    expect(a).toBe(b);
    expect(requests).toHaveLength(1);
  });
});
