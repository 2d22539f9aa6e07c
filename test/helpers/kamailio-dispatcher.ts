/**
 * A real Kamailio running the shipped deploy/kamailio/dispatcher.cfg unchanged, in front of several gateways: only
 * its defines are set from the command line (`-A`), as an operator may, so the tests exercise the file operators
 * deploy. Its dispatcher.list names the test's gateways. `stop()` kills it; every started Kamailio is also killed
 * when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { kamailioModulesDir, udpPortTaken } from './kamailio.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DISPATCHER_CFG = path.join(ROOT, 'deploy/kamailio/dispatcher.cfg');

const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export interface DispatcherOptions {
  host: string;
  port: number;
  /** `host:port` of each gateway, in dispatcher set 1. */
  gateways: Array<{ address: string; name: string }>;
  pingIntervalSec: number;
  gatewayTimeoutMs: number;
  /**
   * ds_select_dst algorithm (DISPATCH_ALGORITHM); default 4, round robin: the cluster tests count which gateway got
   * which call. The shipped default, 0 (Call-ID hash), is what the benchmark runs.
   */
  algorithm?: number;
  /** SIP workers (CHILDREN); default the file's. */
  children?: number;
  /** Shared/private memory in MB (-m/-M); default 64/8, small for a test. */
  memoryMb?: { shared: number; private: number };
  /** The tlsf allocator (-x/-X tlsf) production configurations use, instead of the packaged debugging default. */
  tlsf?: boolean;
  /** Keep Kamailio's log in memory for log()/waitForLog() (default); the benchmark discards it. */
  keepLog?: boolean;
}

export interface Dispatcher {
  /** The main process; its workers are its children. */
  pid: number;
  address: string;
  /** Kamailio's log (stderr). */
  log(): string;
  /** Resolves once the log has a line matching `re` (after `from` characters); rejects after timeoutMs. */
  waitForLog(re: RegExp, timeoutMs: number, from?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startDispatcher(o: DispatcherOptions): Promise<Dispatcher> {
  const mpath = kamailioModulesDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-dispatcher-'));
  const list = path.join(dir, 'dispatcher.list');
  fs.writeFileSync(list, o.gateways.map((g) => `1 sip:${g.address} 0 0 duid=${g.name}\n`).join(''));
  const defines = [
    `LISTEN=udp:${o.host}:${o.port}`,
    `DISPATCHER_LIST="${list}"`,
    `PING_INTERVAL=${o.pingIntervalSec}`,
    `GATEWAY_TIMEOUT_MS=${o.gatewayTimeoutMs}`,
    `DISPATCH_ALGORITHM=${o.algorithm ?? 4}`,
    ...(o.children === undefined ? [] : [`CHILDREN=${o.children}`]),
  ].flatMap((d) => ['-A', d]);
  const base = ['-f', DISPATCHER_CFG, '-L', mpath, ...defines];
  const check = spawnSync('kamailio', ['-c', ...base], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`kamailio refused dispatcher.cfg:\n${check.stderr}`);
  // -DD: foreground; -E: log to stderr; -Y: a runtime dir of our own; -m/-M: memory.
  const memory = o.memoryMb ?? { shared: 64, private: 8 };
  const args = ['-DD', '-E', ...base, '-Y', dir, '-m', String(memory.shared), '-M', String(memory.private)];
  if (o.tlsf) args.push('-x', 'tlsf', '-X', 'tlsf');
  const child = spawn('kamailio', args, { stdio: ['ignore', 'ignore', o.keepLog === false ? 'ignore' : 'pipe'] });
  running.add(child);
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  const deadline = Date.now() + 10_000;
  while (!(await udpPortTaken(o.port, o.host))) {
    if (child.exitCode !== null) throw new Error(`kamailio exited during start-up:\n${log}`);
    if (Date.now() > deadline) throw new Error(`kamailio did not start within 10 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200)); // its workers finish forking
  return {
    pid: child.pid!,
    address: `${o.host}:${o.port}`,
    log: () => log,
    async waitForLog(re, timeoutMs, from = 0) {
      const until = Date.now() + timeoutMs;
      while (!re.test(log.slice(from))) {
        if (Date.now() > until)
          throw new Error(`kamailio log has no ${re} within ${timeoutMs} ms:\n${log.slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
