/** Per Telnyx trunk series in /metrics: INVITEs sent, refusals by limit (from 0), calls up and INVITEs waiting. */
import { expect, it } from 'vitest';
import { Metrics } from '../../src/metrics/metrics.ts';

it('exports each trunk with its counters from 0 and its usage at scrape time', async () => {
  let active = 3;
  const m = new Metrics({
    defaultMetrics: false,
    trunkUsage: () => [
      { trunk: 'default', active, waiting: 0 },
      { trunk: 'eu', active: 1, waiting: 2 },
    ],
  });
  m.trunkInvite('eu');
  m.trunkInvite('eu');
  m.trunkLimitRefused('eu', 'cps');
  active = 4;
  const text = await m.render();
  expect(text).toContain('kallglot_gateway_trunk_invites_total{trunk="eu"} 2');
  expect(text).toContain('kallglot_gateway_trunk_invites_total{trunk="default"} 0');
  expect(text).toContain('kallglot_gateway_trunk_limit_refusals_total{trunk="eu",limit="cps"} 1');
  expect(text).toContain('kallglot_gateway_trunk_limit_refusals_total{trunk="default",limit="concurrency"} 0');
  expect(text).toContain('kallglot_gateway_trunk_active_calls{trunk="default"} 4');
  expect(text).toContain('kallglot_gateway_trunk_waiting_invites{trunk="eu"} 2');
});
