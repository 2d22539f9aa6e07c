/**
 * The operational metrics counted by the real daemon, end to end with SIPp: a fallback by its reason (and the setup
 * latency of the route it took), an admission reject by its reason, and the build, probe and pending-ends series.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TEST_TIMEOUT_MS, startRig, waitFor, type DurabilityRig } from '../e2e/durability/rig.ts';
import type { GatewayProcess } from '../helpers/gateway.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

async function metrics(gw: GatewayProcess): Promise<string> {
  return (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
}

describe('operational metrics of the daemon', () => {
  it('counts a fallback by reason, with the setup latency of the fallback route', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway();
    r.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    const uas = await r.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await (await r.startPbx('uac-invite-200-then-bye.xml')).done;
    const telnyx = await uas.done;
    expect(pbx.exitCode, r.diag(pbx, telnyx)).toBe(0);
    await waitFor(
      () => gw.summaries().find((s) => s.route === 'fallback'),
      10_000,
      () => r.diag(pbx, telnyx),
    );

    const text = await metrics(gw);
    expect(sample(text, 'kallglot_gateway_fallbacks_total{reason="kallglot_internal_error"}'), text).toBe(1);
    expect(sample(text, 'kallglot_gateway_calls_total{route="fallback",result="completed"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_call_setup_seconds_count{route="fallback"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_pending_session_ends')).toBe(0);
    expect(text).toMatch(/^kallglot_gateway_build_info\{version="0\.1\.0",node="v\d+\.\d+\.\d+"\} 1$/m);
    // The sandbox answers the probe of its API base: up, once the first probe (at start) has finished.
    let up = sample(text, 'kallglot_gateway_kallglot_up');
    for (let i = 0; i < 100 && up !== 1; i++) {
      await new Promise((res) => setTimeout(res, 50));
      up = sample(await metrics(gw), 'kallglot_gateway_kallglot_up');
    }
    expect(up).toBe(1);
  });

  it('counts admission rejects by reason', { timeout: TEST_TIMEOUT_MS }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway({ PBX_ALLOWED_SOURCES: '10.0.0.0/8' });
    const before = await metrics(gw);
    expect(sample(before, 'kallglot_gateway_admission_rejects_total{reason="source_not_allowed"}')).toBe(0);
    const pbx = await (await r.startPbx('uac-invite-expect-403.xml')).done;
    expect(pbx.exitCode, r.diag(pbx)).toBe(0);
    const text = await metrics(gw);
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="source_not_allowed"}')).toBe(1);
    expect(sample(text, 'kallglot_gateway_admission_rejects_total{reason="draining"}')).toBe(0);
    expect(sample(text, 'kallglot_gateway_calls_total{route="rejected",result="sip_403"}')).toBe(1);
  });
});
