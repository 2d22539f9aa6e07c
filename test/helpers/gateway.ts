/**
 * Runs the real daemon (`node src/main.ts`) as a child process for end-to-end tests, on free ports, and collects its
 * JSON log lines. Every started daemon is killed when the test process exits, so nothing outlives a test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LEVEL_VALUES } from '../../src/logger.ts';
import { freePort } from './ports.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface LogLine {
  /** The level's name, as the daemon writes it (`"level":"info"`); compare levels with levelValue(). */
  level: keyof typeof LEVEL_VALUES;
  /** ISO 8601. */
  time: string;
  msg: string;
  [key: string]: unknown;
}

/** pino's number for a line's level (error = 50), for "this bad or worse" comparisons. */
export function levelValue(line: LogLine): number {
  return LEVEL_VALUES[line.level];
}

/** A line's time in epoch milliseconds. */
export function timeMs(line: LogLine): number {
  return Date.parse(line.time);
}

export interface GatewayProcess {
  pid: number;
  sipPort: number;
  httpPort: number;
  dataDir: string;
  logs: LogLine[];
  /** The JSON log lines as written, before parsing (JSON.parse hides a repeated key). */
  rawLogs: string[];
  /** Raw stderr (config errors are printed there). */
  stderr(): string;
  /** Resolves with the first log line matching `pred` (waits up to timeoutMs). */
  waitForLog(pred: (l: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Call summaries logged so far. */
  summaries(): LogLine[];
  signal(sig: NodeJS.Signals): void;
  /** Resolves with the exit code (or signal name) once the process ended. */
  exited: Promise<number | string>;
  stop(): Promise<void>;
}

export interface StartGatewayOptions {
  env?: Record<string, string>;
  /** Reuse a data directory (restart tests); default: a fresh temp dir. */
  dataDir?: string;
  sipPort?: number;
  /** Wait for the start-up line (default true). */
  waitReady?: boolean;
}

export async function startGateway(opts: StartGatewayOptions = {}): Promise<GatewayProcess> {
  const sipPort = opts.sipPort ?? (await freePort('both'));
  const httpPort = await freePort('tcp');
  const dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'kg-gw-data-'));
  const env: Record<string, string> = {
    PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? os.tmpdir(),
    SIP_HOST: '127.0.0.1',
    SIP_PORT: String(sipPort),
    SIP_PUBLIC_ADDRESS: '127.0.0.1',
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    DATA_DIR: dataDir,
    LOG_LEVEL: 'debug',
    // A loaded test machine makes any process's event loop lag and look busy: overload refusals (503) are not what
    // most tests test (test/e2e/overload.test.ts turns them on).
    OVERLOAD_LAG_MS: '0',
    OVERLOAD_BUSY_PERCENT: '0',
    ...opts.env,
  };
  const nodeBin = path.join(ROOT, 'node_modules/.bin/node');
  const child = spawn(nodeBin, ['src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  const logs: LogLine[] = [];
  const rawLogs: string[] = [];
  let stderr = '';
  const waiters: Array<{ pred: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
    buf += chunk;
    let idx: number;
    while ((idx = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, idx);
      buf = buf.slice(idx + 1);
      let parsed: LogLine;
      try {
        parsed = JSON.parse(line) as LogLine;
      } catch {
        continue;
      }
      logs.push(parsed);
      rawLogs.push(line);
      for (const w of [...waiters]) {
        if (w.pred(parsed)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(parsed);
        }
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (c: string) => (stderr += c));
  const exited = new Promise<number | string>((resolve) => {
    child.on('exit', (code, sig) => {
      running.delete(child);
      resolve(code ?? sig ?? -1);
    });
  });

  const waitForLog = (pred: (l: LogLine) => boolean, timeoutMs = 10_000): Promise<LogLine> => {
    const found = logs.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(
          new Error(
            `log line not seen within ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}; last logs: ${JSON.stringify(logs.slice(-5))}`,
          ),
        );
      }, timeoutMs);
      waiters.push({
        pred,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
      });
    });
  };

  const gw: GatewayProcess = {
    pid: child.pid ?? -1,
    sipPort,
    httpPort,
    dataDir,
    logs,
    rawLogs,
    stderr: () => stderr,
    waitForLog,
    summaries: () => logs.filter((l) => l.msg === 'call summary'),
    signal: (sig) => void child.kill(sig),
    exited,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  if (opts.waitReady !== false) {
    await Promise.race([
      waitForLog((l) => l.msg === 'kallglot-sip-gateway started', 15_000),
      exited.then((code) => {
        throw new Error(`gateway exited (${code}) during start-up: ${stderr.slice(-2000)}`);
      }),
    ]);
  }
  return gw;
}
