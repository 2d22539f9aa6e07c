/**
 * One system under load at stepped rates: for each rate a fresh SIPp UAC sends `rate × seconds` calls; CPU and RSS of
 * every watched process are read from /proc at the start and the end of a steady window (after the first calls have
 * had their whole hold time, so INVITEs and BYEs are both in it), and SIPp reports failed calls and setup times.
 */
import { freePort } from '../test/helpers/ports.ts';
import { type CpuSample, machineBusyMs, type Watched, sample } from './proc.ts';
import { percentile, type SippProcess, startUac } from './sipp-load.ts';

export interface SystemUnderTest {
  name: string;
  /** Where the UAC sends its INVITEs. */
  remotePort: number;
  /** Dialled number: picks the gateway's routing rule (translated or bypass). */
  service: string;
  /** The processes whose CPU per call is reported; `uac` is added per step. */
  watched: Watched[];
  /** The gateway's /metrics text: its own counts of fallbacks, refusals and pool waits per step. */
  metrics?: () => Promise<string>;
  /** Connections open toward the Kallglot double (its pool), read at the end of the window. */
  kallglotConnections?: () => number;
}

/** Gateway counters summed over their labels, read before and after a step. */
const COUNTERS = {
  fallbacks: 'kallglot_gateway_fallbacks_total',
  refused: 'kallglot_gateway_admission_rejects_total',
  poolQueued: 'kallglot_gateway_kallglot_pool_queued_total',
} as const;
type Counts = Record<keyof typeof COUNTERS, number> & { refusedBy: Record<string, number> };

async function counts(sut: SystemUnderTest): Promise<Counts | undefined> {
  const text = await sut.metrics?.().catch(() => undefined);
  if (text === undefined) return undefined;
  const sum = (name: string): number =>
    [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);
  const refusedBy: Record<string, number> = {};
  // Summed: with several instances the text is every instance's /metrics, one after the other.
  for (const m of text.matchAll(new RegExp(`^${COUNTERS.refused}\\{reason="([^"]+)"\\} (\\S+)$`, 'gm'))) {
    refusedBy[m[1]!] = (refusedBy[m[1]!] ?? 0) + Number(m[2]);
  }
  return {
    fallbacks: sum(COUNTERS.fallbacks),
    refused: sum(COUNTERS.refused),
    poolQueued: sum(COUNTERS.poolQueued),
    refusedBy,
  };
}

function delta(before: Counts, after: Counts): Counts {
  const refusedBy: Record<string, number> = {};
  for (const [k, v] of Object.entries(after.refusedBy))
    if (v - (before.refusedBy[k] ?? 0) > 0) refusedBy[k] = v - (before.refusedBy[k] ?? 0);
  return {
    fallbacks: after.fallbacks - before.fallbacks,
    refused: after.refused - before.refused,
    poolQueued: after.poolQueued - before.poolQueued,
    refusedBy,
  };
}

export interface StepOptions {
  seconds: number;
  holdMs: number;
  scenario?: string;
}

export interface StepResult {
  rate: number;
  calls: number;
  successful: number;
  failed: number;
  /** Setup times (INVITE sent → 200 received at the UAC), ms. */
  p50: number;
  p95: number;
  p99: number;
  /** Per watched process name (plus `sipp-uac`): CPU ms per call over the steady window. */
  cpuMsPerCall: Record<string, number>;
  /** Per watched process name: resident memory at the end of the window, MiB. */
  rssMiB: Record<string, number>;
  /** All rtd timers SIPp recorded, by name (1: answered; 2: refused, in the overload scenario). */
  rtd: Record<string, number[]>;
  /** Cores' worth of CPU that processes outside the benchmark used during the window: noise when above ~0.1. */
  otherCores: number;
  /** The gateway's own view of the step (absent for Kamailio): calls it fell back on, refused, pool waits. */
  gateway?: Counts;
  kallglotConnections?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runStep(sut: SystemUnderTest, rate: number, o: StepOptions): Promise<StepResult> {
  const calls = Math.round(rate * o.seconds);
  const countsBefore = await counts(sut);
  let uac: SippProcess | undefined;
  const watched: Watched[] = [...sut.watched, { name: 'sipp-uac', pids: () => (uac ? [uac.pid] : []) }];
  const run = startUac({
    scenario: o.scenario ?? 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${sut.remotePort}`,
    localPort: await freePort('udp'),
    service: sut.service,
    rate,
    calls,
    holdMs: o.holdMs,
  });
  uac = run.process;
  // Steady from one hold time plus a second after the start, until the last INVITE is sent.
  const warmMs = Math.min(o.holdMs + 1000, (o.seconds * 1000) / 2);
  await sleep(warmMs);
  const before = sample(watched);
  const busyBefore = machineBusyMs();
  const t0 = performance.now();
  await sleep(o.seconds * 1000 - warmMs);
  const after = sample(watched);
  const kallglotConnections = sut.kallglotConnections?.();
  const busy = machineBusyMs() - busyBefore;
  const windowSec = (performance.now() - t0) / 1000;
  const whole = after.filter((a) => !a.part);
  const ours = whole.reduce((sum, a) => sum + a.cpuMs - (before.find((b) => b.name === a.name)?.cpuMs ?? 0), 0);
  const res = await run.result;
  const countsAfter = await counts(sut);
  const setup = res.rtd.get('1') ?? [];
  return {
    rate,
    calls,
    successful: res.successful,
    failed: Number.isNaN(res.failed) ? calls - (res.successful || 0) : res.failed,
    p50: percentile(setup, 50),
    p95: percentile(setup, 95),
    p99: percentile(setup, 99),
    cpuMsPerCall: perCall(before, after, rate * windowSec),
    rssMiB: Object.fromEntries(after.map((s) => [s.name, s.rssMiB])),
    rtd: Object.fromEntries(res.rtd),
    otherCores: Math.max(0, busy - ours) / 1000 / windowSec,
    ...(kallglotConnections !== undefined && { kallglotConnections }),
    ...(countsBefore && countsAfter && { gateway: delta(countsBefore, countsAfter) }),
  };
}

function perCall(before: CpuSample[], after: CpuSample[], callsInWindow: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const a of after) {
    const b = before.find((x) => x.name === a.name);
    if (b) out[a.name] = (a.cpuMs - b.cpuMs) / callsInWindow;
  }
  return out;
}

/**
 * SIPp loses a few datagrams of its own, whatever it talks to (0.1-0.5% of the calls against Kamailio at 200-800/s
 * on 2 cores shared with it): failures up to this share still count as clean, for every system alike.
 */
export const LOSS_FLOOR = 0.005;

/**
 * Clean: every call served, but for SIPp's own loss. A call the gateway refused (503, its own count) is never loss:
 * one refusal makes the rate not clean (the benchmark looks for what is served).
 */
export function isClean(r: StepResult): boolean {
  const refused = r.gateway?.refused ?? 0;
  return refused === 0 && r.failed <= LOSS_FLOOR * r.calls && r.successful + r.failed === r.calls;
}

export interface SystemResult {
  name: string;
  steps: StepResult[];
}

/**
 * Rates in order, after an unrecorded warm-up (3 s at half the first rate: a fresh Node process compiles its hot
 * code in its first seconds, which no later step would see). After the first rate that is not clean none is tried.
 */
export async function runRates(sut: SystemUnderTest, rates: number[], o: StepOptions): Promise<SystemResult> {
  const steps: StepResult[] = [];
  await runStep(sut, Math.max(10, Math.round((rates[0] ?? 100) / 2)), { ...o, seconds: 3 });
  await sleep(1500);
  for (const rate of rates) {
    const r = await runStep(sut, rate, o);
    steps.push(r);
    console.error(
      `  ${sut.name} @ ${rate}/s: ${r.failed} failed of ${r.calls}, setup p50 ${r.p50} p99 ${r.p99} ms, ` +
        `CPU ms/call ${Object.entries(r.cpuMsPerCall)
          .map(([k, v]) => `${k} ${v.toFixed(3)}`)
          .join(', ')}`,
    );
    if (!isClean(r)) break;
    await sleep(1500); // the last calls' BYEs and the UAC's exit settle before the next rate
  }
  return { name: sut.name, steps };
}
