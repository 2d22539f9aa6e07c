/**
 * The benchmark's tables, as Markdown (pasted as they are into docs/benchmarks.md): every rate of every system, then
 * the side-by-side summary with the gateway/Kamailio ratios.
 */
import { isClean, LOSS_FLOOR, type StepResult, type SystemResult } from './steps.ts';

const f = (v: number, digits = 0): string => (Number.isFinite(v) ? v.toFixed(digits) : '–');

function cpuCell(r: StepResult, name: string): string {
  const v = r.cpuMsPerCall[name];
  return v === undefined ? '–' : f(v, 3);
}

/** The system's CPU per call, with Kamailio's share when it dispatches to several instances. */
function systemCpuCell(r: StepResult): string {
  const dispatcher = r.cpuMsPerCall.dispatcher;
  return dispatcher === undefined ? cpuCell(r, 'system') : `${cpuCell(r, 'system')} (Kamailio ${f(dispatcher, 3)})`;
}

function gatewayCell(r: StepResult): string {
  const g = r.gateway;
  if (!g) return '–';
  const conns =
    r.kallglotConnections !== undefined && r.kallglotConnections > 0 ? `, ${r.kallglotConnections} conn.` : '';
  const why = Object.entries(g.refusedBy)
    .map(([k, v]) => `${k.replace(/^event_loop_/, '')} ${v}`)
    .join(', ');
  return `${g.fallbacks} / ${g.refused}${why ? ` (${why})` : ''} / ${g.poolQueued}${conns}`;
}

export function stepsTable(systems: SystemResult[]): string {
  const rows = [
    '| system | calls/s | calls | failed | setup p50 / p95 / p99 ms | CPU ms per call: system | Kallglot double | SIPp UAC + UAS | RSS MiB | gateway: fallbacks / 503 / pool waits | other load (cores) |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of systems) {
    for (const r of s.steps) {
      const sipp = (r.cpuMsPerCall['sipp-uac'] ?? 0) + (r.cpuMsPerCall['sipp-uas'] ?? 0);
      rows.push(
        `| ${s.name} | ${r.rate} | ${r.calls} | ${r.failed}${r.failed === 0 ? '' : ` (${f((100 * r.failed) / r.calls, 1)}%)`} | ` +
          `${f(r.p50)} / ${f(r.p95)} / ${f(r.p99)} | ${systemCpuCell(r)} | ${cpuCell(r, 'kallglot')} | ${f(sipp, 3)} | ${f(r.rssMiB.system ?? Number.NaN)} | ${gatewayCell(r)} | ${f(r.otherCores, 2)} |`,
      );
    }
  }
  return rows.join('\n');
}

/** The highest rate with every call served, and the first rate past it. */
export function bestClean(s: SystemResult): { best?: StepResult; past?: StepResult } {
  let best: StepResult | undefined;
  let past: StepResult | undefined;
  for (const r of s.steps) {
    if (isClean(r)) best = r;
    else if (!past) past = r;
  }
  return { best, past };
}

export function summaryTable(systems: SystemResult[]): string {
  const rows = [
    `| system | highest clean rate (no 503, failed ≤ ${100 * LOSS_FLOOR}%: SIPp's own loss) | p99 setup there | CPU per call there | past it |`,
    '|---|---|---|---|---|',
  ];
  for (const s of systems) {
    const { best, past } = bestClean(s);
    const pastText = past
      ? `${past.rate}/s: ${f((100 * past.failed) / past.calls, 1)}% failed, p99 ${f(past.p99)} ms`
      : 'not saturated';
    rows.push(
      `| ${s.name} | ${best ? `${best.rate}/s` : 'none'} | ${best ? `${f(best.p99)} ms` : '–'} | ` +
        `${best ? `${systemCpuCell(best)} ms` : '–'} | ${pastText} |`,
    );
  }
  return rows.join('\n');
}

/**
 * gateway/Kamailio: the ratio of highest clean rates, and of CPU per call at the highest rate both served cleanly
 * (CPU per call falls as a loaded process batches more work per wake-up, so it is compared at one rate).
 */
export function ratios(kamailio: SystemResult | undefined, gateway: SystemResult[]): string {
  if (!kamailio) return 'No Kamailio reference in this run: no ratios.';
  const ref = bestClean(kamailio).best;
  const lines: string[] = [];
  for (const g of gateway) {
    const best = bestClean(g).best;
    const rate = ref && best ? `${f(best.rate / ref.rate, 2)}×` : '–';
    const common = g.steps.filter(isClean).findLast((r) => kamailio.steps.some((k) => k.rate === r.rate && isClean(k)));
    const k = common && kamailio.steps.find((x) => x.rate === common.rate);
    const cpu =
      common && k ? `${f(common.cpuMsPerCall.system! / k.cpuMsPerCall.system!, 2)}× at ${common.rate}/s` : '–';
    const cpuAtBest =
      best && ref
        ? `${f(best.cpuMsPerCall.system! / ref.cpuMsPerCall.system!, 2)}× (each at its highest clean rate)`
        : '–';
    lines.push(
      `- ${g.name} / Kamailio: rate ${rate}${ref ? '' : ' (Kamailio had no clean rate)'}; CPU per call ${cpu}, ${cpuAtBest}`,
    );
  }
  return lines.join('\n');
}
