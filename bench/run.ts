/**
 * Benchmarks (not tests: no pass/fail on speed). `npm run bench` prints:
 *  1. SIP parser/serializer throughput on a typical INVITE with SDP (in-process);
 *  2. a SIPp load run through the real daemon (SIPp UAC → gateway → SIPp UAS, Kallglot sandbox), with the gateway's
 *     own call-setup latency percentiles (INVITE received → 200 relayed, Kallglot create included), failed calls,
 *     and the daemon's resident memory before and after.
 * Options: BENCH_CALLS (default 1000), BENCH_RATE calls/s (default 100), BENCH_HOLD_MS (default 500).
 */
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseMessage } from '../src/sip/embedded/parser.ts';
import { serializeMessage } from '../src/sip/embedded/serialize.ts';
import { KallglotSandbox } from '../src/kallglot/sandbox.ts';
import { startGateway } from '../test/helpers/gateway.ts';
import { runSipp } from '../test/helpers/sipp.ts';
import { freePort } from '../test/helpers/ports.ts';

const INVITE = Buffer.from(
  [
    'INVITE sip:+4930123456@192.0.2.10:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: <sip:+4930123456@192.0.2.10>',
    'From: "Alice Agent" <sip:+15551234567@192.0.2.20>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@192.0.2.20:5060>',
    'P-Asserted-Identity: <sip:+15551234567@192.0.2.20>',
    'X-Kallglot-Languages: de-en',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO',
    'Content-Type: application/sdp',
    '',
    '',
  ].join('\r\n') +
    [
      'v=0',
      'o=alice 2890844526 2890844526 IN IP4 192.0.2.20',
      's=-',
      'c=IN IP4 192.0.2.20',
      't=0 0',
      'm=audio 49170 RTP/AVP 0 8 101',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      '',
    ].join('\r\n'),
);

function parserBench(): void {
  const n = 100_000;
  for (let i = 0; i < 5000; i++) parseMessage(INVITE);
  let t = performance.now();
  let msg: ReturnType<typeof parseMessage> | undefined;
  for (let i = 0; i < n; i++) msg = parseMessage(INVITE);
  const parseMs = performance.now() - t;
  if (!msg?.ok) throw new Error('bench message did not parse');
  t = performance.now();
  for (let i = 0; i < n; i++) serializeMessage(msg.message);
  const serMs = performance.now() - t;
  console.log(
    `parser:     ${Math.round(n / (parseMs / 1000)).toLocaleString()} INVITEs/s (${((parseMs * 1000) / n).toFixed(2)} µs each, ${INVITE.length} bytes)`,
  );
  console.log(
    `serializer: ${Math.round(n / (serMs / 1000)).toLocaleString()} INVITEs/s (${((serMs * 1000) / n).toFixed(2)} µs each)`,
  );
}

function rssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function loadBench(): Promise<void> {
  const calls = Number(process.env.BENCH_CALLS ?? 1000);
  const rate = Number(process.env.BENCH_RATE ?? 100);
  const holdMs = Number(process.env.BENCH_HOLD_MS ?? 500);
  const sandbox = new KallglotSandbox();
  const { url } = await sandbox.start();
  const uasPort = await freePort('both');
  const uas = runSipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: uasPort, timeoutSec: 600 });
  await uas.ready;
  const gw = await startGateway({
    env: {
      KALLGLOT_API_URL: url,
      KALLGLOT_API_KEY: 'sk_test_bench',
      TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
      ...(process.env.BENCH_NODE_OPTIONS ? { NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS } : {}),
      LOG_LEVEL: 'info',
      MAX_CALLS_PER_SECOND: String(rate * 2),
      MAX_CONCURRENT_CALLS: '5000',
    },
  });
  const rssBefore = rssMb(gw.pid);
  const t0 = performance.now();
  const uac = runSipp({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${gw.sipPort}`,
    localPort: await freePort('both'),
    service: '+4930123456',
    calls,
    rate,
    concurrent: Math.max(50, rate * 4),
    durationMs: holdMs,
    timeoutSec: 600,
  });
  const res = await uac.done;
  const wallS = (performance.now() - t0) / 1000;
  const rssAfter = rssMb(gw.pid);
  await uas.stop();
  await new Promise((r) => setTimeout(r, 1500));
  const health = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).json()) as {
    activeCalls: number;
    sip: unknown;
  };
  const deadline = Date.now() + 15_000;
  while (sandbox.stats().ended < sandbox.stats().created && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 100));
  const setup = gw
    .summaries()
    .map((s) => Number(s.setupMs))
    .filter(Number.isFinite)
    .sort((a, b) => a - b);
  const failed = /Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(res.stdout)?.[1] ?? '?';
  console.log(
    `load:       ${calls} calls at ${rate}/s, hold ${holdMs} ms: SIPp UAC exit ${res.exitCode}, failed calls ${failed}, wall ${wallS.toFixed(1)} s`,
  );
  console.log(
    `setup:      p50 ${pct(setup, 50)} ms, p95 ${pct(setup, 95)} ms, p99 ${pct(setup, 99)} ms, max ${setup.at(-1)} ms (INVITE in → 200 out, Kallglot create included)`,
  );
  console.log(`sessions:   created ${sandbox.stats().created}, ended ${sandbox.stats().ended}`);
  console.log(`memory:     daemon RSS ${rssBefore.toFixed(0)} MB before, ${rssAfter.toFixed(0)} MB after`);
  console.log(`after:      active calls ${health.activeCalls}, engine ${JSON.stringify(health.sip)}`);
  // Transactions linger 32 s after their calls by design (RFC 3261 timer D/J, RFC 6026 Accepted): wait them out and
  // check that everything the calls held is released (a leak shows as counts or heap that stay up).
  const settleDeadline = Date.now() + 45_000;
  let settled = health;
  while (Date.now() < settleDeadline) {
    settled = (await (await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).json()) as typeof health;
    if ((settled.sip as { activeTransactions: number }).activeTransactions === 0) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  if (process.env.BENCH_HEAPSNAPSHOT) {
    // With BENCH_NODE_OPTIONS="--heapsnapshot-signal=SIGUSR2 --diagnostic-dir=DIR": a snapshot after a full GC,
    // whose size tracks the live heap (compare runs of different lengths to spot a leak).
    process.kill(gw.pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 5000));
  }
  const metrics = await (await fetch(`http://127.0.0.1:${gw.httpPort}/metrics`)).text();
  const heapMb = Number(/^nodejs_heap_size_used_bytes\s+(\S+)/m.exec(metrics)?.[1] ?? NaN) / 1024 / 1024;
  console.log(
    `settled:    engine ${JSON.stringify(settled.sip)}, heap used ${heapMb.toFixed(0)} MB, RSS ${rssMb(gw.pid).toFixed(0)} MB`,
  );
  await gw.stop();
  await sandbox.stop();
}

parserBench();
await loadBench();
process.exit(0);
