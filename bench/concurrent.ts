/**
 * The memory of N calls held at once (`npm run bench -- --concurrent N`, issue 14: "10,000 concurrent calls fit in
 * <= 256 MiB"). Translated calls are ramped at a rate the gateway serves cleanly, each held until every one is up,
 * then hung up in the order they came. The gateway's RSS and V8 heap are sampled idle, with all N calls up (nothing
 * is sent meanwhile: the calls sit in SIPp's pause), and once every call ended and its transactions expired (32 s).
 * With --heap-snapshot DIR a snapshot is written at both of the last two points (`node bench/heap-top.ts FILE`): it
 * collects first, so it shows the live heap where "heap used" includes garbage not yet collected.
 */
import { freePort } from '../test/helpers/ports.ts';
import { gatewaySampler, type MemorySample } from './gateway-sampler.ts';
import { startUac, startUas } from './sipp-load.ts';
import { startGateway, startKallglotDouble } from './targets.ts';

export interface ConcurrentOptions {
  calls: number;
  rate: number;
  latencyMs: number;
  gatewayEnv: Record<string, string>;
  service: string;
  heapSnapshotDir?: string;
}

/** Every call up for this long: the samples (and a heap snapshot) are taken in it. */
const PLATEAU_MS = 20_000;
/** Timer D/J/L (32 s) after the last call's end, plus a margin: every transaction is gone. */
const EXPIRY_MS = 40_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runConcurrent(o: ConcurrentOptions): Promise<void> {
  const rampMs = Math.ceil((o.calls / o.rate) * 1000);
  const plateauMs = PLATEAU_MS + (o.heapSnapshotDir ? 30_000 : 0);
  const uasPort = await freePort('both');
  const uas = await startUas(uasPort, o.calls * 2);
  const double = await startKallglotDouble(o.latencyMs);
  const gw = await startGateway({
    kallglotUrl: double.url,
    telnyxPort: uasPort,
    // A memory run, not a capacity run: a call refused in a burst (a collection, the first seconds' compiling) would
    // be a call not held, so the overload control is off unless --gateway-env sets it. MAX_CONCURRENT_CALLS=0 (no
    // limit) is startGateway's; MAX_INFLIGHT_SETUPS bounds only calls not yet answered.
    env: { OVERLOAD_LAG_MS: '0', OVERLOAD_BUSY_PERCENT: '0', ...o.gatewayEnv },
    ...(o.heapSnapshotDir && {
      nodeOptions: `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${o.heapSnapshotDir}`,
    }),
  });
  const sampler = gatewaySampler(gw);
  const snapshot = async (): Promise<void> => {
    if (!o.heapSnapshotDir) return;
    process.kill(gw.pid, 'SIGUSR2');
    await sleep(25_000);
  };
  try {
    await sleep(2000);
    const idle = await sampler.take('idle');
    const run = startUac({
      scenario: 'uac-invite-200-then-bye.xml',
      remote: `127.0.0.1:${gw.sipPort}`,
      localPort: await freePort('udp'),
      service: o.service,
      rate: o.rate,
      calls: o.calls,
      holdMs: rampMs + plateauMs,
      maxOpenCalls: o.calls + 100,
    });
    await sleep(rampMs / 2);
    await sampler.take('ramp, half the calls up');
    await sleep(rampMs / 2);
    await allUp(sampler.health, o.calls, plateauMs / 2);
    const held = await sampler.take(`${o.calls} calls held`);
    await snapshot();
    const res = await run.result;
    await sampler.take('last call ended');
    await sleep(EXPIRY_MS);
    const after = await sampler.take('transactions expired');
    await snapshot();
    if (o.heapSnapshotDir) await sampler.take('after the heap snapshot (collected)');
    console.log(
      `concurrent: ${o.calls} translated calls ramped at ${o.rate}/s, each held ${((rampMs + plateauMs) / 1000).toFixed(0)} s: ` +
        `${res.successful} successful, ${res.failed} failed`,
    );
    console.log(`\n${memoryTable(sampler.rows)}\n\n${perCallLine(idle, held, after)}`);
  } finally {
    await gw.stop();
    await double.stop();
    await uas.stop();
  }
}

/** Until every call is answered (the last setups may still be under way when the ramp ends), at most `ms`. */
async function allUp(health: () => Promise<{ activeCalls: number }>, calls: number, ms: number): Promise<void> {
  for (let waited = 0; waited < ms; waited += 1000) {
    if ((await health()).activeCalls >= calls) return;
    await sleep(1000);
  }
}

function memoryTable(rows: MemorySample[]): string {
  const lines = [
    '| t (s) | moment | gateway RSS MiB | V8 heap used MiB | active calls | transactions |',
    '|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    lines.push(
      `| ${r.t} | ${r.label ?? ''} | ${r.rss.toFixed(0)} | ${r.heap.toFixed(0)} | ${r.activeCalls} | ${r.transactions} |`,
    );
  }
  return lines.join('\n');
}

function perCallLine(idle: MemorySample, held: MemorySample, after: MemorySample): string {
  const kib = (mib: number): string => ((mib * 1024) / Math.max(1, held.activeCalls)).toFixed(1);
  return (
    `Per call held (${held.activeCalls} active): RSS +${(held.rss - idle.rss).toFixed(0)} MiB ` +
    `(${kib(held.rss - idle.rss)} KiB a call), heap used +${(held.heap - idle.heap).toFixed(0)} MiB ` +
    `(${kib(held.heap - idle.heap)} KiB a call). After: RSS ${after.rss.toFixed(0)} MiB, heap ${after.heap.toFixed(0)} MiB ` +
    `(idle ${idle.rss.toFixed(0)} / ${idle.heap.toFixed(0)}).`
  );
}
