/**
 * The overload demonstration (`npm run bench -- --overload RATE`, RATE about twice the translated capacity): the same
 * load once with the overload control as shipped (OVERLOAD_LAG_MS, MAX_INFLIGHT_SETUPS) and once with it off. The
 * UAC takes a 200 or a 503 as success and times both (uac-invite-200-or-503-timed.xml): what matters is that admitted
 * calls keep their setup time, the excess is refused fast, and nothing times out.
 */
import fs from 'node:fs';
import { freePort } from '../test/helpers/ports.ts';
import { startUas, percentile } from './sipp-load.ts';
import { runStep, type StepOptions, type StepResult } from './steps.ts';
import { startGateway, startKallglotDouble } from './targets.ts';

export interface OverloadOptions {
  rate: number;
  step: StepOptions;
  latencyMs: number;
  gatewayEnv: Record<string, string>;
  service: string;
  json?: string;
}

interface Outcome {
  label: string;
  step: StepResult;
  rejects: Record<string, number>;
}

async function once(label: string, o: OverloadOptions, env: Record<string, string>): Promise<Outcome> {
  const uasPort = await freePort('both');
  const uas = await startUas(uasPort);
  const double = await startKallglotDouble(o.latencyMs);
  const gw = await startGateway({ kallglotUrl: double.url, telnyxPort: uasPort, env: { ...o.gatewayEnv, ...env } });
  try {
    const step = await runStep(
      {
        name: label,
        remotePort: gw.sipPort,
        service: o.service,
        watched: [
          { name: 'system', pids: () => [gw.pid] },
          { name: 'kallglot', pids: () => [double.pid] },
        ],
      },
      o.rate,
      { ...o.step, scenario: 'uac-invite-200-or-503-timed.xml' },
    );
    const metrics = await gw.metrics();
    const rejects: Record<string, number> = {};
    for (const m of metrics.matchAll(/^kallglot_gateway_admission_rejects_total\{reason="([^"]+)"\} (\S+)/gm)) {
      if (Number(m[2]) > 0) rejects[m[1]!] = Number(m[2]);
    }
    return { label, step, rejects };
  } finally {
    await gw.stop();
    await double.stop();
    await uas.stop();
  }
}

function row(out: Outcome): string {
  const s = out.step;
  const answered = s.rtd['1'] ?? [];
  const refused = s.rtd['2'] ?? [];
  const f = (v: number): string => (Number.isFinite(v) ? v.toFixed(0) : '–');
  const reasons = Object.entries(out.rejects)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return (
    `| ${out.label} | ${s.rate} | ${s.calls} | ${answered.length} | ${f(percentile(answered, 50))} / ${f(percentile(answered, 99))} | ` +
    `${refused.length}${reasons ? ` (${reasons})` : ''} | ${f(percentile(refused, 50))} / ${f(percentile(refused, 99))} / ${f(refused.length ? refused.reduce((a, b) => Math.max(a, b)) : Number.NaN)} | ` +
    `${s.failed} | ${(s.cpuMsPerCall.system ?? Number.NaN).toFixed(3)} |`
  );
}

export async function runOverload(o: OverloadOptions): Promise<void> {
  const on = await once('overload control on (defaults)', o, {});
  await new Promise((r) => setTimeout(r, 2000));
  const off = await once('overload control off', o, {
    OVERLOAD_LAG_MS: '0',
    OVERLOAD_BUSY_PERCENT: '0',
    MAX_INFLIGHT_SETUPS: '0',
  });
  console.log(
    '\n| run | calls/s | calls | answered | answered setup p50 / p99 ms | refused 503 | 503 after p50 / p99 / max ms | failed (timeouts, other) | gateway CPU ms per offered call |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  console.log(row(on));
  console.log(row(off));
  if (o.json) fs.writeFileSync(o.json, JSON.stringify([on, off], null, 2));
}
