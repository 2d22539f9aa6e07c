/**
 * deploy/grafana/kallglot-gateway.json and deploy/prometheus/alerts.yml against the real thing: every metric a
 * query or alert uses must exist in the /metrics output of a running gateway (histograms as _bucket/_sum/_count), so
 * renaming a metric cannot silently blank a panel or disarm an alert.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { type InProcessGateway, startInProcess } from '../admin/in-process.ts';
import { balanced, exposedNames, metricNames } from './promql.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const DASHBOARD = path.join(ROOT, 'deploy/grafana/kallglot-gateway.json');
const ALERTS = path.join(ROOT, 'deploy/prometheus/alerts.yml');

/** Prometheus's own series about a scrape target, not exposed by the target. */
const SYNTHETIC = new Set(['up']);

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string }>;
}

interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: Array<{ name: string; type: string; definition?: string }> };
};
const alerts = YAML.parse(fs.readFileSync(ALERTS, 'utf8')) as { groups: Array<{ name: string; rules: AlertRule[] }> };
const alertRules = alerts.groups.flatMap((g) => g.rules);
const panelQueries = dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ where: p.title, expr: t.expr })));
const variableQueries = dashboard.templating.list
  .filter((v) => v.type === 'query')
  .map((v) => ({ where: `$${v.name}`, expr: /label_values\(([^,)]+)/.exec(v.definition ?? '')?.[1]?.trim() ?? '' }));

let gateway: InProcessGateway;
let exposed: Set<string>;
beforeAll(async () => {
  gateway = await startInProcess('default:\n  mode: bypass\n');
  exposed = exposedNames(await gateway.metrics());
}, 30_000);
afterAll(async () => {
  await gateway?.stop();
});

describe('metricNames (the PromQL reader this test relies on)', () => {
  it('finds selected metrics and skips functions, aggregations, labels, ranges and numbers', () => {
    expect(
      metricNames(
        'histogram_quantile(0.95, sum by (le, route) (rate(a_bucket{x="1e5", y=~"$v"}[$__rate_interval]))) / ' +
          'clamp_min(sum without (i) (b_total offset 5m), 1e-9) > 0.2 and on (instance) c unless bool up',
      ).sort((a, b) => a.localeCompare(b)),
    ).toEqual(['a_bucket', 'b_total', 'c', 'up']);
  });
});

describe('Grafana dashboard', () => {
  it('is a dashboard with unique panel ids, non-overlapping rows and a Prometheus datasource variable', () => {
    expect(dashboard.uid).toBe('kallglot-gateway');
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(expect.arrayContaining(['datasource', 'instance']));
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('queries only metrics the running gateway exposes', () => {
    expect(exposed.size).toBeGreaterThan(10);
    for (const { where, expr } of [...panelQueries, ...variableQueries]) {
      expect(balanced(expr), `${where}: ${expr}`).toBe(true);
      const names = metricNames(expr);
      expect(names.length, `${where}: ${expr}`).toBeGreaterThan(0);
      for (const name of names) expect(exposed.has(name), `${where}: ${name} is not in /metrics`).toBe(true);
    }
  });

  it('covers calls, latency, fallbacks, admission, Kallglot, session ends, SIP and routing reloads', () => {
    const used = new Set(panelQueries.flatMap((q) => metricNames(q.expr)));
    for (const name of [
      'calls_total',
      'active_calls',
      'call_setup_seconds_bucket',
      'fallbacks_total',
      'admission_rejects_total',
      'kallglot_request_seconds_bucket',
      'kallglot_requests_total',
      'kallglot_up',
      'pending_session_ends',
      'sip_messages_total',
      'routing_reloads_total',
    ]) {
      expect(used.has(`kallglot_gateway_${name}`), name).toBe(true);
    }
    const setup = panelQueries.filter((q) => q.expr.includes('call_setup_seconds_bucket')).map((q) => q.expr);
    for (const quantile of ['0.5', '0.95', '0.99']) {
      expect(setup.some((e) => e.startsWith(`histogram_quantile(${quantile},`) && /by \(le, route\)/.test(e))).toBe(
        true,
      );
    }
  });
});

describe('Prometheus alert rules', () => {
  it('are well-formed rules with a severity and a summary', () => {
    expect(alertRules.length).toBeGreaterThanOrEqual(6);
    const names = alertRules.map((r) => r.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const r of alertRules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^[A-Z][A-Za-z]+$/);
      expect(['critical', 'warning'], r.alert).toContain(r.labels?.severity);
      expect(r.annotations?.summary, r.alert).toBeTruthy();
      expect(r.annotations?.description, r.alert).toBeTruthy();
      if (r.for !== undefined) expect(r.for, r.alert).toMatch(/^\d+[smh]$/);
    }
  });

  it('use only metrics the running gateway exposes (and Prometheus`s own `up`)', () => {
    for (const r of alertRules) {
      expect(balanced(r.expr), `${r.alert}: ${r.expr}`).toBe(true);
      const names = metricNames(r.expr);
      expect(names.length, r.alert).toBeGreaterThan(0);
      for (const name of names) {
        expect(exposed.has(name) || SYNTHETIC.has(name), `${r.alert}: ${name} is not in /metrics`).toBe(true);
      }
    }
  });

  it('cover the gateway down, no translated calls, fallback ratio, pending ends, Kallglot and refused reloads', () => {
    const byMetric = (m: string): string[] =>
      alertRules.filter((r) => metricNames(r.expr).includes(m)).map((r) => r.alert);
    expect(byMetric('up')).toEqual(['KallglotGatewayDown']);
    expect(byMetric('kallglot_gateway_calls_total')).toEqual([
      'KallglotGatewayNoTranslatedCalls',
      'KallglotGatewayHighFallbackRatio',
    ]);
    expect(byMetric('kallglot_gateway_pending_session_ends')).toEqual(['KallglotGatewayPendingSessionEndsGrowing']);
    expect(byMetric('kallglot_gateway_kallglot_up')).toEqual(['KallglotUnreachable']);
    expect(byMetric('kallglot_gateway_routing_reloads_total')).toEqual(['KallglotGatewayRoutingReloadRefused']);
  });
});
