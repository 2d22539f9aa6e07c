/**
 * What the benchmark reads about other processes, from /proc (Linux only): CPU time and resident memory of a process
 * together with every process it forked (Kamailio is a tree of workers; the gateway is one process with threads,
 * whose CPU /proc/PID/stat already sums).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';

/** Clock ticks per second of utime/stime in /proc/PID/stat (USER_HZ; 100 on every common Linux). */
const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

function readStat(pid: number): { ppid: number; cpuMs: number } | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name (field 2) may hold spaces and parentheses: the fields that follow start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const ppid = Number(fields[1]);
  const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
  return { ppid, cpuMs: (ticks * 1000) / CLK_TCK };
}

/** `pid` and all its descendants that are alive now. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readStat(Number(name));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(name));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const p = queue.shift()!;
    out.push(p);
    queue.push(...(children.get(p) ?? []));
  }
  return out;
}

/** CPU milliseconds (user + system) used so far by the processes. */
export function cpuMs(pids: number[]): number {
  return pids.reduce((sum, pid) => sum + (readStat(pid)?.cpuMs ?? 0), 0);
}

/** Resident memory in MiB of the processes together (shared pages of a forked tree count once per process). */
export function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // exited meanwhile
    }
  }
  return kib / 1024;
}

/** A named set of processes whose CPU is measured over a window. */
export interface Watched {
  name: string;
  pids: () => number[];
  /** A part of another watched entry (the dispatcher within the whole system): reported, not counted twice. */
  part?: boolean;
}

export interface CpuSample {
  name: string;
  part?: boolean;
  cpuMs: number;
  rssMiB: number;
}

export function sample(watched: Watched[]): CpuSample[] {
  return watched.map((w) => {
    const pids = w.pids();
    return { name: w.name, cpuMs: cpuMs(pids), rssMiB: rssMiB(pids), ...(w.part && { part: true }) };
  });
}

/** CPU milliseconds the whole machine has spent busy (every core: user, system, interrupts, steal), from /proc/stat. */
export function machineBusyMs(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return (((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) * 1000) / CLK_TCK;
}

/** Established TCP connections toward `port` on this machine (the gateway's pool toward the Kallglot double). */
export function connectionsTo(port: number): number {
  try {
    const out = execFileSync('ss', ['-Htn', 'state', 'established', `( dport = :${port} )`], { encoding: 'utf8' });
    return out.split('\n').filter((l) => l.trim() !== '').length;
  } catch {
    return Number.NaN;
  }
}
