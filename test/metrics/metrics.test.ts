import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Gateway } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';
import { HttpServer } from '../../src/http/server.ts';
import { Metrics, registerMetricsRoute } from '../../src/metrics/metrics.ts';
import { DEFAULT_RULES, generateSigningKey, parseXml, signHeaders } from '../telnyx/harness.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('Metrics', () => {
  it('exposes the typed counters, gauge and histograms in Prometheus text format', async () => {
    let active = 3;
    const m = new Metrics({ activeCalls: () => active, defaultMetrics: false });
    m.callFinished('translated', 'completed');
    m.callFinished('translated', 'completed');
    m.callFinished('fallback', 'kallglot_timeout');
    m.setupLatency('translated', 0.3);
    m.kallglotRequest('create', 201, 0.12);
    m.kallglotRequest('create', 'timeout', 1.5);
    m.sipMessage('in', 'INVITE');
    m.sipMessage('out', 486);
    m.sipMessage('in', 'BOGUSMETHOD');
    m.parseError();
    m.webhookVerificationFailed('/webhooks/telnyx/voice');
    let text = await m.render();
    expect(sample(text, 'kallglot_gateway_calls_total{route="translated",result="completed"}')).toBe(2);
    expect(sample(text, 'kallglot_gateway_calls_total{route="fallback",result="kallglot_timeout"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_active_calls')).toBe(3);
    expect(sample(text, 'kallglot_gateway_call_setup_seconds_bucket{le="0.5",route="translated"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_call_setup_seconds_bucket{le="0.25",route="translated"}')).toBe(0);
    expect(sample(text, 'kallglot_gateway_kallglot_requests_total{op="create",status="201"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_kallglot_requests_total{op="create",status="timeout"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_kallglot_request_seconds_count{op="create"}')).toBe(2);
    expect(sample(text, 'kallglot_gateway_sip_messages_total{direction="in",method="INVITE"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_sip_messages_total{direction="out",method="486"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_sip_messages_total{direction="in",method="other"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_sip_parse_errors_total')).toBe(1);
    expect(sample(text, 'kallglot_gateway_webhook_verification_failures_total{path="/webhooks/telnyx/voice"}')).toBe(1);
    active = 5;
    text = await m.render();
    expect(sample(text, 'kallglot_gateway_active_calls')).toBe(5);
  });

  it('exposes the operational series: fallbacks, admission rejects, reloads, pending ends, Kallglot probe, build', async () => {
    let pending = 2;
    let up: boolean | undefined;
    const m = new Metrics({
      defaultMetrics: false,
      pendingSessionEnds: () => pending,
      kallglotUp: () => up,
      version: '9.8.7',
    });
    let text = await m.render();
    // Known reasons and results start at 0 so that increase() sees their first event.
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="rate"}')).toBe(0);
    expect(sample(text, 'kallglot_gateway_routing_reloads_total{result="refused"}')).toBe(0);
    expect(sample(text, 'kallglot_gateway_kallglot_up')).toBe(0); // not probed yet
    expect(sample(text, `kallglot_gateway_build_info{version="9.8.7",node="${process.version}"}`)).toBe(1);

    m.fallback('kallglot_timeout');
    m.fallback('kallglot_timeout');
    m.fallback('translated_leg_503');
    m.admissionRejected('concurrency');
    m.routingReload('ok');
    m.routingReload('refused');
    pending = 5;
    up = true;
    text = await m.render();
    expect(sample(text, 'kallglot_gateway_fallbacks_total{reason="kallglot_timeout"}')).toBe(2);
    expect(sample(text, 'kallglot_gateway_fallbacks_total{reason="translated_leg_503"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="concurrency"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_routing_reloads_total{result="ok"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_routing_reloads_total{result="refused"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_pending_session_ends')).toBe(5);
    expect(sample(text, 'kallglot_gateway_kallglot_up')).toBe(1);
    up = false;
    expect(sample(await m.render(), 'kallglot_gateway_kallglot_up')).toBe(0);
  });

  it('folds odd label values so they cannot create unbounded series', async () => {
    const m = new Metrics({ defaultMetrics: false });
    m.callFinished('translated', 'a value with spaces and "quotes"');
    m.kallglotRequest('end', 'x'.repeat(100), 0.1);
    const text = await m.render();
    expect(sample(text, 'kallglot_gateway_calls_total{route="translated",result="other"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_kallglot_requests_total{op="end",status="other"}')).toBe(1);
  });

  it('keeps registries separate per instance and includes Node process metrics by default', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.parseError();
    expect(sample(await a.render(), 'kallglot_gateway_sip_parse_errors_total')).toBe(1);
    const textB = await b.render();
    expect(sample(textB, 'kallglot_gateway_sip_parse_errors_total')).toBe(0);
    expect(textB).toMatch(/^process_cpu_user_seconds_total /m);
    expect(textB).toMatch(/^nodejs_heap_size_used_bytes /m);
  });

  it('serves GET /metrics with the Prometheus content type', async () => {
    const http = new HttpServer(pino({ level: 'silent' }));
    const m = new Metrics({ defaultMetrics: false });
    registerMetricsRoute(http, m);
    const port = await http.listen(0, '127.0.0.1');
    cleanups.push(() => http.close());
    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(await res.text()).toContain('# TYPE kallglot_gateway_active_calls gauge');
  });
});

describe('Gateway wiring (in-process)', () => {
  it('serves /metrics and the signed Telnyx webhooks, and counts refused webhooks', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-gw-telnyx-'));
    cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const rulesFile = path.join(dir, 'routing.yaml');
    fs.writeFileSync(rulesFile, DEFAULT_RULES);
    const key = generateSigningKey();
    const config = loadConfig({
      env: {
        SIP_HOST: '127.0.0.1',
        SIP_PORT: '0',
        SIP_PUBLIC_ADDRESS: '127.0.0.1',
        SIP_TRANSPORTS: 'udp',
        HTTP_HOST: '127.0.0.1',
        HTTP_PORT: '0',
        DATA_DIR: path.join(dir, 'data'),
        ROUTING_FILE: rulesFile,
        TELNYX_PUBLIC_KEY: key.publicKeyBase64,
        LOG_LEVEL: 'silent',
      },
    });
    const gw = new Gateway(config, pino({ level: 'silent' }));
    await gw.start();
    cleanups.push(() => gw.stop());
    const base = `http://127.0.0.1:${gw.httpPort}`;

    const body = new URLSearchParams({ CallSid: 'v3:gw-1', From: '+4930111', To: '+4940222' }).toString();
    const form = { 'content-type': 'application/x-www-form-urlencoded' };
    const refused = await fetch(`${base}/webhooks/telnyx/voice`, { method: 'POST', headers: form, body });
    expect(refused.status).toBe(401);
    const ok = await fetch(`${base}/webhooks/telnyx/voice`, {
      method: 'POST',
      headers: { ...form, ...signHeaders(key, body) },
      body,
    });
    expect(ok.status).toBe(200);
    const xml = parseXml(await ok.text());
    expect(xml.children.map((c) => c.name)).toEqual(['Connect']);
    expect(xml.children[0]!.children[0]!.attrs.track).toBe('both_tracks');

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(sample(metrics, 'kallglot_gateway_webhook_verification_failures_total{path="/webhooks/telnyx/voice"}')).toBe(
      1,
    );
    expect(sample(metrics, 'kallglot_gateway_active_calls')).toBe(0);
    expect(metrics).toMatch(/^process_resident_memory_bytes /m);
  });
});
