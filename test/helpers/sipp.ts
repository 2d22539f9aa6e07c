/**
 * Run SIPp (v3.6.1) as a child process for end-to-end tests: SIPp UAC plays the PBX, SIPp UAS plays Telnyx.
 *
 * SIPp exit codes (`sipp -h`, observed with 3.6.1):
 *    0  all calls succeeded
 *    1  at least one call failed
 *   97  exit on internal command (SIGUSR1 / 'q'); calls may have been processed
 *   99  normal exit without any call processed
 *  255  (-1) fatal error: bad scenario/option, unreachable TCP peer, and also the -timeout_error global timeout
 *  254  (-2) fatal error binding a socket
 * SIPp traps SIGTERM and exits normally, often with 0, so a run ended by stop() is flagged `stopped` rather than
 * recognisable by its code. Killed by a signal (SIGKILL fallback, watchdog) it has no exit code; `exitCode` is then
 * 128 + signal number and `signal` is set.
 *
 * SIPp needs no TTY: with stdin ignored and -nostdin it never reads keys and just prints its statistics screens to
 * stdout (kept, truncated, in the result). Everything SIPp saw is also logged to files in a per-run temp dir whose
 * contents are returned so a failing test can show them.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { isPortBound } from './ports.ts';

export const SIPP_BIN = process.env.SIPP_BIN ?? '/usr/bin/sipp';
export const SCENARIO_DIR = path.resolve(import.meta.dirname, '../../sipp-scenarios');

export interface SippOptions {
  /** File name in sipp-scenarios/ or an absolute path. */
  scenario: string;
  /** Defaults to 'uac' when `remote` is given, else 'uas'. */
  role?: 'uac' | 'uas';
  /** host:port the UAC sends to (required for a UAC); an IPv6 host in brackets: `[::1]:5060`. */
  remote?: string;
  localPort: number;
  /** -i: the address SIPp binds and writes in its Via/Contact/SDP (default 127.0.0.1; `::1` for IPv6). */
  localIp?: string;
  transport?: 'udp' | 'tcp';
  /** -m: exit after this many calls. */
  calls?: number;
  /** -r: calls per rate period (SIPp default 10). */
  rate?: number;
  /** -rp: rate period in ms (SIPp default 1000). */
  ratePeriodMs?: number;
  /** -l: maximum simultaneous calls. */
  concurrent?: number;
  /** -s: Request-URI user ([service]). */
  service?: string;
  /** -d: length of scenario <pause/> elements without their own duration, in ms. */
  durationMs?: number;
  /** -set name value: global variables, used as [$name]; the scenario must declare them in <Global>. */
  vars?: Record<string, string>;
  /** -key name value: generic keywords, used as [name]; SIPp refuses a scenario using an undefined one. */
  keys?: Record<string, string>;
  /**
   * Extra header lines for scenarios that put [$extra_headers] at the end of a header line (see
   * uac-invite-200-then-bye.xml); becomes `-set extra_headers "\r\nName: value..."`.
   */
  headers?: Record<string, string>;
  /** -timeout with -timeout_error: SIPp gives up (exit 255) after this long. Default 20 s. */
  timeoutSec?: number;
  extraArgs?: string[];
}

export interface SippResult {
  exitCode: number;
  signal: NodeJS.Signals | null;
  /** Ended by stop()/stopAllSipp() or the watchdog, not on its own: the exit code says nothing about the calls. */
  stopped: boolean;
  stdout: string;
  stderr: string;
  /** -trace_msg log: every message sent and received. */
  messages?: string;
  /** -trace_err log: unexpected messages, aborted calls, fatal errors. */
  errors?: string;
  args: string[];
}

export interface SippRun {
  readonly pid: number;
  readonly args: string[];
  /** Resolves once SIPp holds its local port (seen in /proc/net); rejects if SIPp exits first. */
  readonly ready: Promise<void>;
  readonly done: Promise<SippResult>;
  /** Kill the process group (SIGTERM, SIGKILL after a grace period) and wait for the exit. */
  stop(): Promise<void>;
}

const MAX_CAPTURE = 256 * 1024;
const running = new Set<{ pid: number; stop: () => Promise<void> }>();

/** Stop every SIPp this worker started that is still running. Registered as afterAll for each test file. */
export async function stopAllSipp(): Promise<void> {
  await Promise.all([...running].map((r) => r.stop()));
}

try {
  afterAll(stopAllSipp);
} catch {
  // imported outside a vitest run (e.g. a script): only the exit hook below applies
}
// Last resort if the worker goes down without running hooks: children live in their own process group.
process.once('exit', () => {
  for (const r of running) killGroup(r.pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function scenarioPath(scenario: string): string {
  return path.isAbsolute(scenario) ? scenario : path.join(SCENARIO_DIR, scenario);
}

export function buildSippArgs(opts: SippOptions, logDir: string): string[] {
  const role = opts.role ?? (opts.remote ? 'uac' : 'uas');
  if (role === 'uac' && !opts.remote) throw new Error('SIPp UAC needs opts.remote (host:port)');
  const args: string[] = [];
  if (role === 'uac') args.push(opts.remote!);
  args.push(
    '-sf',
    scenarioPath(opts.scenario),
    '-i',
    opts.localIp ?? '127.0.0.1',
    '-bind_local', // listen on that address only, the one freePort() checked
    '-p',
    String(opts.localPort),
    '-t',
    opts.transport === 'tcp' ? 't1' : 'u1',
    '-nostdin',
    '-timeout',
    `${opts.timeoutSec ?? 20}s`,
    '-timeout_error',
    '-trace_msg',
    '-message_file',
    path.join(logDir, 'messages.log'),
    '-trace_err',
    '-error_file',
    path.join(logDir, 'errors.log'),
  );
  if (opts.calls !== undefined) args.push('-m', String(opts.calls));
  if (opts.rate !== undefined) args.push('-r', String(opts.rate));
  if (opts.ratePeriodMs !== undefined) args.push('-rp', String(opts.ratePeriodMs));
  if (opts.concurrent !== undefined) args.push('-l', String(opts.concurrent));
  if (opts.service !== undefined) args.push('-s', opts.service);
  if (opts.durationMs !== undefined) args.push('-d', String(opts.durationMs));
  for (const [k, v] of Object.entries(opts.keys ?? {})) args.push('-key', k, v);
  const vars = { ...opts.vars };
  if (opts.headers && Object.keys(opts.headers).length > 0) {
    vars.extra_headers = Object.entries(opts.headers)
      .map(([k, v]) => `\r\n${k}: ${v}`)
      .join('');
  }
  for (const [k, v] of Object.entries(vars)) args.push('-set', k, v);
  args.push(...(opts.extraArgs ?? []));
  return args;
}

function readIfExists(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return undefined;
  }
}

export function runSipp(opts: SippOptions): SippRun {
  const file = scenarioPath(opts.scenario);
  if (!fs.existsSync(file)) throw new Error(`SIPp scenario not found: ${file}`);
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipp-run-'));
  const args = buildSippArgs(opts, logDir);
  // detached: own process group, so stop() also reaches anything SIPp forks and Ctrl-C on vitest does not race us.
  const child = spawn(SIPP_BIN, args, { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error(`could not spawn ${SIPP_BIN}`);
  const pid = child.pid;

  let stdout = '';
  let stderr = '';
  const keep = (acc: string, chunk: Buffer): string => {
    const s = acc + chunk.toString('latin1');
    return s.length > MAX_CAPTURE ? s.slice(-MAX_CAPTURE) : s;
  };
  child.stdout.on('data', (c: Buffer) => (stdout = keep(stdout, c)));
  child.stderr.on('data', (c: Buffer) => (stderr = keep(stderr, c)));

  let exited = false;
  let stopped = false;
  const entry = { pid, stop: async (): Promise<void> => {} };
  running.add(entry);

  // Backstop in case SIPp ignores its own -timeout (e.g. wedged on a socket).
  const watchdog = setTimeout(
    () => {
      stopped = true;
      killGroup(pid, 'SIGKILL');
    },
    ((opts.timeoutSec ?? 20) + 10) * 1000,
  );

  const done = new Promise<SippResult>((resolve) => {
    const finish = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (exited) return;
      exited = true;
      clearTimeout(watchdog);
      running.delete(entry);
      const signum = signal ? (os.constants.signals[signal] ?? 0) : 0;
      const result: SippResult = {
        exitCode: code ?? 128 + signum,
        signal,
        stopped,
        stdout,
        stderr,
        messages: readIfExists(path.join(logDir, 'messages.log')),
        errors: readIfExists(path.join(logDir, 'errors.log')),
        args,
      };
      fs.rmSync(logDir, { recursive: true, force: true });
      resolve(result);
    };
    child.once('close', finish);
    child.once('error', (err) => {
      stderr += `\n[spawn error] ${err.message}`;
      finish(-1, null);
    });
  });

  entry.stop = async () => {
    if (!exited) {
      stopped = true;
      killGroup(pid, 'SIGTERM');
      const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), 2000);
      await done;
      clearTimeout(grace);
    }
  };

  const transportKind = opts.transport === 'tcp' ? 'tcp' : 'udp';
  const ready = (async () => {
    for (let waited = 0; ; waited += 20) {
      if (exited) throw new Error(`SIPp exited before binding port ${opts.localPort}`);
      const bound = isPortBound(opts.localPort, transportKind);
      // Without /proc/net there is nothing to observe; SIPp binds within a few hundred ms of starting.
      if (bound === true || (bound === undefined && waited >= 500)) return;
      if (waited > 10_000) throw new Error(`SIPp did not bind port ${opts.localPort} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  ready.catch(() => {}); // callers that never await ready must not see an unhandled rejection

  return { pid, args, ready, done, stop: entry.stop };
}

/** Human-readable dump of a run for assertion messages. */
export function formatSippResult(r: SippResult, maxChars = 8000): string {
  const tail = (s: string | undefined): string =>
    s && s.length > maxChars ? `…${s.slice(-maxChars)}` : (s ?? '(none)');
  return [
    `sipp ${r.args.join(' ')}`,
    `exit ${r.exitCode}${r.signal ? ` (${r.signal})` : ''}${r.stopped ? ' [stopped by the harness]' : ''}`,
    `--- errors.log\n${tail(r.errors)}`,
    `--- stderr\n${tail(r.stderr)}`,
    `--- messages.log\n${tail(r.messages)}`,
  ].join('\n');
}
