/**
 * The series of the overload control and the Kallglot client pool, and the settings behind them: the gauges read
 * their sources at scrape time, the pool's wait is observed and a full pool counted, admission's new reasons start
 * at 0, and OVERLOAD_LAG_MS / OVERLOAD_BUSY_PERCENT / MAX_INFLIGHT_SETUPS / KALLGLOT_POOL_CONNECTIONS / KALLGLOT_HTTP2
 * load with their defaults.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { Metrics } from '../../src/metrics/metrics.ts';

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('overload and pool metrics', () => {
  it('reads in-flight setups and lag at scrape time, and counts pool waits and refusals by reason', async () => {
    let inflight = 7;
    const m = new Metrics({
      defaultMetrics: false,
      inflightSetups: () => inflight,
      eventLoopLagMs: () => 120,
      eventLoopUtilization: () => 0.97,
    });
    m.kallglotPoolWait('create', 0.002, false);
    m.kallglotPoolWait('create', 0.3, true);
    m.kallglotPoolWait('create', Number.NaN, true); // queued and never got a connection
    m.admissionRejected('event_loop_lag');
    inflight = 9;
    const text = await m.render();
    expect(sample(text, 'kallglot_gateway_inflight_setups')).toBe(9);
    expect(sample(text, 'kallglot_gateway_event_loop_lag_seconds')).toBe(0.12);
    expect(sample(text, 'kallglot_gateway_event_loop_utilization')).toBe(0.97);
    expect(sample(text, 'kallglot_gateway_kallglot_pool_queued_total{op="create"}')).toBe(2);
    expect(sample(text, 'kallglot_gateway_kallglot_pool_wait_seconds_count{op="create"}')).toBe(2);
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="event_loop_lag"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="inflight_setups"}')).toBe(0);
  });
});

describe('overload and pool settings', () => {
  it('defaults: lag 50 ms, busy 95%, 1000 setups in flight, a derived pool, HTTP/1.1', () => {
    const c = loadConfig({ env: {} });
    expect(c.calls.overloadLagMs).toBe(50);
    expect(c.calls.overloadBusyPercent).toBe(95);
    expect(c.calls.maxInflightSetups).toBe(1000);
    expect(c.kallglot.poolConnections).toBe(0);
    expect(c.kallglot.http2).toBe(false);
  });

  it('reads the env names, 0 turning the checks off, and names a bad value', () => {
    const c = loadConfig({
      env: {
        OVERLOAD_LAG_MS: '0',
        OVERLOAD_BUSY_PERCENT: '95',
        MAX_INFLIGHT_SETUPS: '200',
        KALLGLOT_POOL_CONNECTIONS: '150',
        KALLGLOT_HTTP2: 'true',
      },
    });
    expect(c.calls.overloadLagMs).toBe(0);
    expect(c.calls.overloadBusyPercent).toBe(95);
    expect(c.calls.maxInflightSetups).toBe(200);
    expect(c.kallglot.poolConnections).toBe(150);
    expect(c.kallglot.http2).toBe(true);
    expect(() => loadConfig({ env: { OVERLOAD_LAG_MS: 'soon' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { OVERLOAD_LAG_MS: 'soon' } })).toThrow(/OVERLOAD_LAG_MS \(calls\.overloadLagMs\)/);
  });
});
