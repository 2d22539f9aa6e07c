/**
 * Benchmarks (not tests: no pass/fail on speed). `npm run bench` prints, as Markdown for docs/benchmarks.md:
 *  1. SIP parser/serializer throughput on a typical INVITE with SDP (in-process);
 *  2. Kamailio (when installed) as a transaction-stateful record-routing proxy, the reference, then the gateway with
 *     a bypass rule (B2BUA only) and with a translated rule (Kallglot create and end over HTTP to a separate double),
 *     each at stepped rates between the same SIPp UAC and UAS on loopback: failed calls, setup p50/p95/p99 (SIPp
 *     -trace_rtt), CPU ms per call of each process (/proc/PID/stat over a steady window), RSS; then the highest clean
 *     rate per system and the gateway/Kamailio ratios.
 * Modes and options (`npm run bench -- --quick`):
 *   --quick                 fewer, shorter steps: under 2 minutes
 *   --soak SECONDS          only the soak: translated calls at --soak-rate (300/s) with --soak-hold-ms (3000), RSS and
 *                           heap sampled every 30 s, then while the last transactions expire
 *   --overload RATE         only the overload demonstration: RATE translated calls/s (use 2× the capacity) with the
 *                           overload control as shipped, then with it off
 *   --instances LIST        also N gateway instances behind Kamailio's dispatcher (deploy/kamailio/dispatcher.cfg,
 *                           Call-ID hash), a row per N for bypass and translated (e.g. --instances 2 or 1,2); CPU per
 *                           call sums every instance and Kamailio (its share in brackets)
 *   --skip-direct           with --instances: not the single instance reached directly
 *   --concurrent [N]        only the memory of N calls held at once (default 10000): translated calls ramped at
 *                           --concurrent-rate (200/s), held until all are up, then ended; RSS and heap sampled idle,
 *                           at N calls, and after the transactions expired
 *   --kallglot-latency MS   the double answers every request after MS (a remote API), default 0
 *   --kallglot-http2        the double serves HTTPS with HTTP/2 and the gateway runs with KALLGLOT_HTTP2=true
 *   --systems LIST          kamailio,bypass,translated (default all)
 *   --rates-kamailio LIST, --rates-gateway LIST, --rates-translated LIST   calls/s steps
 *   --seconds N             per step (default 10; quick 4), --hold-ms N talk time (default 1000; quick 500)
 *   --gateway-env K=V       extra daemon setting (repeatable), e.g. --gateway-env KALLGLOT_POOL_CONNECTIONS=64
 *   --cpu-prof DIR          the gateway runs with --cpu-prof (profiles written to DIR when it stops; read them with
 *                           node bench/profile-top.ts FILE; its flame graph: node bench/profile-flame.ts FILE
 *                           [--folded])
 *   --heap-snapshot DIR     with --soak or --concurrent: heap snapshots under load and at the end (node bench/heap-top.ts FILE)
 *   --json FILE             all results as JSON too
 *   --nice=N                run everything at this niceness (e.g. --nice=-10, as root): on a machine shared with other
 *                           work, the measured processes then get the cores they ask for
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { parseArgs } from 'node:util';
import { parserBench } from './parser.ts';
import { freePort } from '../test/helpers/ports.ts';
import { ratios, stepsTable, summaryTable } from './report.ts';
import { runOverload } from './overload.ts';
import { runSoak } from './soak.ts';
import { startUas } from './sipp-load.ts';
import { runConcurrent } from './concurrent.ts';
import type { StepOptions, SystemResult } from './steps.ts';
import { fleetRun, gatewayRun, kamailioRun, type RunContext, TRANSLATED_NUMBER } from './systems.ts';

// `--concurrent` without a number means the issue's 10,000 calls (parseArgs has no optional option values).
const argv = process.argv
  .slice(2)
  .flatMap((a, i, all) => (a === '--concurrent' && !/^\d+$/.test(all[i + 1] ?? '') ? [a, '10000'] : [a]));
const { values: args } = parseArgs({
  args: argv,
  options: {
    quick: { type: 'boolean', default: false },
    soak: { type: 'string' },
    instances: { type: 'string' },
    'skip-direct': { type: 'boolean', default: false },
    concurrent: { type: 'string' },
    'concurrent-rate': { type: 'string', default: '200' },
    'soak-rate': { type: 'string', default: '300' },
    'soak-hold-ms': { type: 'string', default: '3000' },
    overload: { type: 'string' },
    'kallglot-latency': { type: 'string', default: '0' },
    'kallglot-http2': { type: 'boolean', default: false },
    systems: { type: 'string', default: 'kamailio,bypass,translated' },
    'rates-kamailio': { type: 'string' },
    'rates-gateway': { type: 'string' },
    'rates-translated': { type: 'string' },
    seconds: { type: 'string' },
    'hold-ms': { type: 'string' },
    'gateway-env': { type: 'string', multiple: true, default: [] },
    'cpu-prof': { type: 'string' },
    'heap-snapshot': { type: 'string' },
    json: { type: 'string' },
    nice: { type: 'string' },
  },
  strict: true,
});

const list = (v: string | undefined, dflt: number[]): number[] => (v ? v.split(',').map(Number) : dflt);
const quick = args.quick;
const step: StepOptions = {
  seconds: Number(args.seconds ?? (quick ? 4 : 10)),
  holdMs: Number(args['hold-ms'] ?? (quick ? 500 : 1000)),
};
const gatewayRates = list(
  args['rates-gateway'],
  quick ? [100, 200, 300] : [100, 150, 200, 250, 300, 400, 500, 600, 800, 1000],
);
const rates = {
  kamailio: list(args['rates-kamailio'], quick ? [100, 200, 800] : [100, 200, 400, 800, 1200, 1600, 2000]),
  bypass: gatewayRates,
  translated: list(args['rates-translated'], gatewayRates),
};
const latencyMs = Number(args['kallglot-latency']);
const gatewayEnv = Object.fromEntries(
  args['gateway-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
const nodeOptions = args['cpu-prof'] ? `--cpu-prof --cpu-prof-dir=${args['cpu-prof']}` : undefined;

// Children inherit the niceness: SIPp, the gateway, the double and Kamailio all run at it.
if (args.nice !== undefined) os.setPriority(Number(args.nice));

function header(): void {
  const commit = (() => {
    try {
      const head = execFileSync('git', ['log', '--oneline', '-1'], { encoding: 'utf8' }).trim();
      const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' });
      return `${head}${dirty.trim() ? ' (plus uncommitted changes)' : ''}`;
    } catch {
      return 'unknown';
    }
  })();
  console.log(
    `machine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
  );
  console.log(`node ${process.version}; commit ${commit}`);
  console.log(`command: npm run bench --${process.argv.slice(2).length ? ` ${process.argv.slice(2).join(' ')}` : ''}`);
  console.log(
    `steps: ${step.seconds} s each, hold ${step.holdMs} ms, Kallglot double latency ${latencyMs} ms` +
      (args['kallglot-http2'] ? ' (HTTPS, HTTP/2)' : '') +
      (args.nice !== undefined ? `, niceness ${args.nice}` : ''),
  );
  const load = os.loadavg()[0] ?? 0;
  // Every process here shares the cores with whatever else runs: the "other load" column says how much did.
  if (load > 0.5)
    console.log(`WARNING: load average ${load.toFixed(1)} before the run: other processes skew the numbers`);
  console.log('');
}

async function ladder(): Promise<void> {
  parserBench();
  const systems = new Set(args.systems.split(','));
  const instances = args.instances ? args.instances.split(',').map(Number) : [];
  const uasPort = await freePort('both');
  const uas = await startUas(uasPort);
  const context: RunContext = {
    uasPort,
    uasPid: uas.pid,
    step,
    latencyMs,
    http2: args['kallglot-http2'],
    gatewayEnv,
    ...(nodeOptions !== undefined && { nodeOptions }),
  };
  const results: SystemResult[] = [];
  try {
    const kamailio = systems.has('kamailio') ? await kamailioRun(context, rates.kamailio) : undefined;
    if (kamailio) results.push(kamailio);
    for (const kind of ['bypass', 'translated'] as const) {
      if (!systems.has(kind)) continue;
      if (!args['skip-direct']) results.push(await gatewayRun(context, kind, rates[kind]));
      for (const n of instances) results.push(await fleetRun(context, kind, n, rates[kind]));
    }
    console.log(`\n${stepsTable(results)}\n\n${summaryTable(results)}\n`);
    console.log(
      ratios(
        kamailio,
        results.filter((r) => r !== kamailio),
      ),
    );
  } finally {
    await uas.stop();
  }
  if (args.json) fs.writeFileSync(args.json, JSON.stringify(results, null, 2));
}

header();
if (args.soak !== undefined) {
  await runSoak({
    seconds: Number(args.soak),
    rate: Number(args['soak-rate']),
    holdMs: Number(args['soak-hold-ms']),
    latencyMs,
    gatewayEnv,
    service: TRANSLATED_NUMBER,
    ...(args['heap-snapshot'] !== undefined && { heapSnapshotDir: args['heap-snapshot'] }),
  });
} else if (args.concurrent !== undefined) {
  await runConcurrent({
    calls: Number(args.concurrent),
    rate: Number(args['concurrent-rate']),
    latencyMs,
    gatewayEnv,
    service: TRANSLATED_NUMBER,
    ...(args['heap-snapshot'] !== undefined && { heapSnapshotDir: args['heap-snapshot'] }),
  });
} else if (args.overload !== undefined) {
  await runOverload({
    rate: Number(args.overload),
    step,
    latencyMs,
    gatewayEnv,
    service: TRANSLATED_NUMBER,
    json: args.json,
  });
} else {
  await ladder();
}
process.exit(0);
