/**
 * The soak (`npm run bench -- --soak SECONDS`): translated calls at a steady rate with long holds, the gateway's RSS
 * and V8 heap (its /metrics) sampled every 30 s, then every 10 s for a minute after the last call, while its
 * transactions expire (32 s after their calls): the memory curve and how far it comes back toward idle.
 */
import { freePort } from '../test/helpers/ports.ts';
import { gatewaySampler } from './gateway-sampler.ts';
import { startUac, startUas } from './sipp-load.ts';
import { startGateway, startKallglotDouble } from './targets.ts';

export interface SoakOptions {
  seconds: number;
  rate: number;
  holdMs: number;
  latencyMs: number;
  gatewayEnv: Record<string, string>;
  service: string;
  /** Write heap snapshots here: at the last sample under load, and at the end (node bench/heap-top.ts reads them). */
  heapSnapshotDir?: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function runSoak(o: SoakOptions): Promise<void> {
  const uasPort = await freePort('both');
  const uas = await startUas(uasPort);
  const double = await startKallglotDouble(o.latencyMs);
  const nodeOptions = o.heapSnapshotDir
    ? `--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${o.heapSnapshotDir}`
    : undefined;
  const gw = await startGateway({ kallglotUrl: double.url, telnyxPort: uasPort, env: o.gatewayEnv, nodeOptions });
  // A snapshot stops the daemon for seconds: its calls fail meanwhile, so a soak with snapshots is for reading, not numbers.
  const snapshot = async (): Promise<void> => {
    if (!o.heapSnapshotDir) return;
    process.kill(gw.pid, 'SIGUSR2');
    await sleep(15_000);
  };
  const t0 = performance.now();
  const { take, rows } = gatewaySampler(gw);
  await take(); // idle
  const run = startUac({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${gw.sipPort}`,
    localPort: await freePort('udp'),
    service: o.service,
    rate: o.rate,
    calls: o.rate * o.seconds,
    holdMs: o.holdMs,
  });
  let finished = false;
  const result = run.result.finally(() => {
    finished = true;
  });
  let snapped = false;
  while (!finished) {
    await Promise.race([sleep(30_000), result]);
    await take();
    // The last sample before the load ends: the soak's steady state (calls and lingering transactions).
    if (!snapped && performance.now() - t0 > o.seconds * 1000 - 35_000) {
      snapped = true;
      await snapshot();
    }
  }
  for (let i = 0; i < 6; i++) {
    await sleep(10_000);
    await take();
  }
  await snapshot();
  const res = await result;
  const metrics = await gw.metrics();
  const refused = [...metrics.matchAll(/^kallglot_gateway_admission_rejects_total\{reason="([^"]+)"\} (\S+)$/gm)]
    .filter((m) => Number(m[2]) > 0)
    .map((m) => `${m[1]} ${m[2]}`);
  const stats = (await (await fetch(`${double.url.replace(/\/v1$/, '')}/_sandbox/stats`)).json()) as {
    created: number;
    ended: number;
  };
  await gw.stop();
  await double.stop();
  await uas.stop();
  console.log(
    `soak: ${o.rate * o.seconds} calls at ${o.rate}/s, hold ${o.holdMs} ms: ${res.failed} failed; ` +
      `sessions created ${stats.created}, ended ${stats.ended}; refused by the gateway: ${refused.join(', ') || 'none'}`,
  );
  // heap used drops only at the next collection, and an idle daemon allocates too little to run one: the rows after
  // the load show the heap as the last collection left it (a heap snapshot, --heap-snapshot, collects first).

  console.log('\n| t (s) | gateway RSS MiB | V8 heap used MiB | active calls | transactions |\n|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.t} | ${r.rss.toFixed(0)} | ${r.heap.toFixed(0)} | ${r.activeCalls} | ${r.transactions} |`);
  }
}
