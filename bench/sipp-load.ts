/**
 * SIPp as the benchmark's load generator and far end. Unlike the test helper (test/helpers/sipp.ts) it logs no
 * messages (-trace_msg at 1,000 calls/s would cost SIPp more CPU than the calls), keeps larger socket buffers so that
 * SIPp's own UDP losses stay out of the results, and records every call's setup time (-trace_rtt): INVITE sent → 200
 * received, the `rtd` of the scenarios. SIPp's clock ticks in whole milliseconds, and on some kernels in 4 ms steps.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const SIPP_BIN = process.env.SIPP_BIN ?? 'sipp';
const SCENARIO_DIR = path.resolve(import.meta.dirname, '../sipp-scenarios');

export interface UacOptions {
  scenario: string;
  remote: string;
  localPort: number;
  service: string;
  rate: number;
  calls: number;
  holdMs: number;
  /** SIPp gives a response this long before it counts the call as failed (a timeout). */
  recvTimeoutMs?: number;
  /** Calls open at once (-l); default 30 s of the rate. */
  maxOpenCalls?: number;
}

export interface UacResult {
  exitCode: number;
  successful: number;
  failed: number;
  /** Setup times in ms by rtd name (`1` for rtd="true"), in the order the calls completed. */
  rtd: Map<string, number[]>;
  /** The same with when each was measured, ms since SIPp started: how the times evolve during a run. */
  rtdSamples: Array<{ atMs: number; name: string; ms: number }>;
  /** The end of SIPp's output (its last statistics screen), for a report when something looks wrong. */
  stdoutTail: string;
}

const BUFFER = String(4 * 1024 * 1024);

export interface SippProcess {
  pid: number;
  done: Promise<{ code: number; stdout: string; dir: string }>;
  stop(): Promise<void>;
}

function start(args: string[]): SippProcess {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-bench-sipp-'));
  const child = spawn(SIPP_BIN, args, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stdout = '';
  child.stdout.setEncoding('latin1').on('data', (c: string) => {
    stdout = (stdout + c).slice(-64 * 1024);
  });
  child.stderr.setEncoding('latin1').on('data', (c: string) => {
    stdout = (stdout + c).slice(-64 * 1024);
  });
  const done = new Promise<{ code: number; stdout: string; dir: string }>((resolve) => {
    child.once('close', (code) => resolve({ code: code ?? -1, stdout, dir }));
  });
  const pid = child.pid ?? -1;
  return {
    pid,
    done,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      process.kill(-pid, 'SIGTERM');
      const t = setTimeout(() => process.kill(-pid, 'SIGKILL'), 3000);
      await done;
      clearTimeout(t);
    },
  };
}

/** A SIPp UAS answering every INVITE at once (no ring pause) until stopped; `maxOpenCalls` sets -l. */
export async function startUas(localPort: number, maxOpenCalls?: number): Promise<SippProcess> {
  const limit = maxOpenCalls === undefined ? [] : ['-l', String(maxOpenCalls)];
  const p = start([
    ...limit,
    '-sf',
    path.join(SCENARIO_DIR, 'uas-answer-200-at-once-expect-bye.xml'),
    '-i',
    '127.0.0.1',
    '-bind_local',
    '-p',
    String(localPort),
    '-t',
    'u1',
    '-nostdin',
    '-buff_size',
    BUFFER,
  ]);
  await new Promise((r) => setTimeout(r, 300)); // SIPp binds within a few ms; no call arrives before the UAC starts
  return p;
}

export function startUac(o: UacOptions): { process: SippProcess; result: Promise<UacResult> } {
  const args = [o.remote, '-sf', path.join(SCENARIO_DIR, o.scenario), '-i', '127.0.0.1', '-bind_local'];
  args.push('-p', String(o.localPort), '-t', 'u1', '-nostdin', '-buff_size', BUFFER);
  args.push('-s', o.service, '-r', String(o.rate), '-m', String(o.calls), '-d', String(o.holdMs));
  // Enough room that SIPp never throttles the rate itself because too many calls are open.
  args.push('-l', String(o.maxOpenCalls ?? Math.max(100, o.rate * 30)));
  args.push('-recv_timeout', String(o.recvTimeoutMs ?? 10_000), '-trace_rtt', '-rtt_freq', '100');
  const proc = start(args);
  const result = proc.done.then(({ code, stdout, dir }) => {
    const parsed = parseResult(code, stdout, dir);
    fs.rmSync(dir, { recursive: true, force: true });
    return parsed;
  });
  return { process: proc, result };
}

function parseResult(code: number, stdout: string, dir: string): UacResult {
  const counter = (name: string): number => {
    const all = [...stdout.matchAll(new RegExp(`${name}\\s*\\|\\s*\\d+\\s*\\|\\s*(\\d+)`, 'g'))];
    return Number(all.at(-1)?.[1] ?? Number.NaN);
  };
  const rtd = new Map<string, number[]>();
  const rtdSamples: UacResult['rtdSamples'] = [];
  const file = fs.readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  if (file) {
    for (const line of fs.readFileSync(path.join(dir, file), 'utf8').split('\n').slice(1)) {
      const [at, ms, name] = line.split(';');
      if (ms === undefined || name === undefined) continue;
      rtdSamples.push({ atMs: Number(at), name: name.trim(), ms: Number(ms) });
      const list = rtd.get(name.trim()) ?? [];
      list.push(Number(ms));
      rtd.set(name.trim(), list);
    }
  }
  return {
    exitCode: code,
    successful: counter('Successful call'),
    failed: counter('Failed call'),
    rtd,
    rtdSamples,
    stdoutTail: stdout.slice(-3000),
  };
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
