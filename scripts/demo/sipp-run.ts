/**
 * The demo's own small SIPp runner: one scenario, one call, its message log kept for the ladder diagram.
 * test/helpers/sipp.ts does more, but it registers vitest hooks, and a script run by `npm run demo` must not load
 * the test framework.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isPortBound } from '../../test/helpers/ports.ts';

const SCENARIO_DIR = path.resolve(import.meta.dirname, '../../sipp-scenarios');
const TIMEOUT_SEC = 15;

export interface SippCall {
  scenario: string;
  localPort: number;
  /** host:port to call; without it SIPp is a UAS waiting on localPort. */
  remote?: string;
  /** -s: the dialled number. */
  service?: string;
  /** -d: length of the scenario's <pause/> (talk time of uac-invite-200-then-bye.xml). */
  pauseMs?: number;
}

export interface SippOutcome {
  /** Meaningless when `stopped`: SIPp ended by SIGTERM often exits 0. */
  exitCode: number;
  /** Ended by stop(), not by finishing its scenario. */
  stopped: boolean;
  /** SIPp's -trace_msg log: every message it sent and received, with its time. */
  messages: string;
  /** SIPp's -trace_err log: why a call failed. */
  errors: string;
}

export interface SippProcess {
  /** Resolves once SIPp holds its port, so a UAS is ready before the call that needs it is placed. */
  ready: Promise<void>;
  done: Promise<SippOutcome>;
  stop(): Promise<void>;
}

const running = new Set<SippProcess>();

/** Stop every SIPp still running (the demo's cleanup, on every path). */
export async function stopAllSipp(): Promise<void> {
  await Promise.all([...running].map((p) => p.stop()));
}

function sippArgs(call: SippCall, logDir: string): string[] {
  const args = call.remote !== undefined ? [call.remote] : [];
  args.push('-sf', path.join(SCENARIO_DIR, call.scenario), '-i', '127.0.0.1', '-bind_local');
  args.push('-p', String(call.localPort), '-m', '1', '-nostdin', '-timeout', `${TIMEOUT_SEC}s`, '-timeout_error');
  args.push('-trace_msg', '-message_file', path.join(logDir, 'messages.log'));
  args.push('-trace_err', '-error_file', path.join(logDir, 'errors.log'));
  if (call.service !== undefined) args.push('-s', call.service);
  if (call.pauseMs !== undefined) args.push('-d', String(call.pauseMs));
  return args;
}

function readOrEmpty(file: string): string {
  try {
    return fs.readFileSync(file, 'latin1');
  } catch {
    return '';
  }
}

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

export function startSipp(call: SippCall): SippProcess {
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-demo-sipp-'));
  // Own process group: Ctrl-C at the terminal reaches the demo, not SIPp; the demo's cleanup stops the whole group.
  const child = spawn('sipp', sippArgs(call, logDir), { detached: true, stdio: 'ignore' });
  let exited = false;
  let stopped = false;
  const done = new Promise<SippOutcome>((resolve) => {
    const finish = (code: number | null): void => {
      if (exited) return;
      exited = true;
      running.delete(proc);
      const outcome = {
        exitCode: code ?? -1,
        stopped,
        messages: readOrEmpty(path.join(logDir, 'messages.log')),
        errors: readOrEmpty(path.join(logDir, 'errors.log')),
      };
      fs.rmSync(logDir, { recursive: true, force: true });
      resolve(outcome);
    };
    child.once('close', finish);
    child.once('error', () => finish(-1));
  });
  const ready = (async () => {
    for (let waited = 0; isPortBound(call.localPort, 'udp') === false; waited += 20) {
      if (exited) throw new Error(`SIPp (${call.scenario}) exited before binding port ${call.localPort}`);
      if (waited > 5000) throw new Error(`SIPp (${call.scenario}) did not bind port ${call.localPort} within 5 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  ready.catch(() => {}); // the caller awaits it, or learns the same from `done`
  const proc: SippProcess = {
    ready,
    done,
    stop: async () => {
      if (exited || child.pid === undefined) return;
      stopped = true;
      killGroup(child.pid, 'SIGTERM');
      const pid = child.pid;
      const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), 2000);
      await done;
      clearTimeout(grace);
    },
  };
  running.add(proc);
  return proc;
}

export interface TracedMessage {
  /** Epoch milliseconds, with SIPp's microseconds as the fraction. */
  time: number;
  direction: 'sent' | 'received';
  startLine: string;
  text: string;
}

/** SIPp writes local time with microseconds: "2026-11-30 11:55:24.296438". */
function parseSippTime(stamp: string): number {
  const m = /^(\d+)-(\d+)-(\d+) (\d+):(\d+):(\d+)\.(\d+)$/.exec(stamp.trim());
  if (m === null) return Number.NaN;
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  const fraction = Number(`0.${m[7]}`) * 1000;
  return new Date(y, mo - 1, d, h, mi, s).getTime() + fraction;
}

/** Splits a -trace_msg log into its messages. */
export function tracedMessages(log: string): TracedMessage[] {
  const out: TracedMessage[] = [];
  const blocks = log.split(/^-{20,} (.*)$/m);
  // split() with a capture group alternates: [before, stamp1, block1, stamp2, block2, …]
  for (let i = 1; i + 1 < blocks.length; i += 2) {
    const m = /^\s*\w+ message (sent|received)[^\n]*\n\n([\s\S]*)$/.exec(blocks[i + 1] ?? '');
    if (m === null) continue;
    const text = (m[2] ?? '').replace(/\n+$/, '\n');
    out.push({
      time: parseSippTime(blocks[i] ?? ''),
      direction: m[1] as 'sent' | 'received',
      startLine: text.split(/\r?\n/, 1)[0]?.trim() ?? '',
      text,
    });
  }
  return out;
}

export function headerOf(text: string, name: string): string | undefined {
  const head = text.split(/\r?\n\r?\n/, 1)[0] ?? '';
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim();
}
