/**
 * A real DNS server for the RFC 3263 tests: Debian's dnsmasq (package dnsmasq-base, the binary without a system
 * service), started in the foreground on 127.0.0.1 and a free port, serving NAPTR, SRV and A records for one test
 * domain from its command line and nothing else (no upstream, no /etc/hosts, no config file). `--local=/domain/`
 * makes it answer NXDOMAIN/NODATA for names it does not hold instead of REFUSED, as a real authoritative server would.
 *
 * Why dnsmasq: one small Debian binary, records given as flags (no zone files), starts in milliseconds, and the
 * gateway then talks to a real DNS server over real UDP, as in production through DNS_SERVERS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll } from 'vitest';
import { freePort, isPortBound } from './ports.ts';

export const DNSMASQ_BIN =
  process.env.DNSMASQ_BIN ?? (fs.existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq');

export interface DnsZone {
  /** The domain dnsmasq answers for alone (`--local=/domain/`). */
  domain: string;
  /** name → IPv4 address (A records). */
  hosts: Record<string, string>;
  srv?: Array<{ name: string; target: string; port: number; priority: number; weight: number }>;
  naptr?: Array<{ name: string; order: number; preference: number; service: string; replacement: string }>;
  /** TTL of the A records (dnsmasq's --local-ttl; default 60). */
  ttlSec?: number;
}

export interface DnsServer {
  /** `127.0.0.1:PORT`, for DNS_SERVERS. */
  server: string;
  /** Queries dnsmasq logged, e.g. `query[SRV] _sip._udp.kg.test`. */
  queries(): string[];
  stop(): Promise<void>;
}

const running = new Set<DnsServer>();
const children = new Set<ChildProcess>();
// Last resort if the worker goes down without running hooks.
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});
try {
  afterAll(() => Promise.all([...running].map((s) => s.stop())));
} catch {
  // outside vitest: the exit hook below still applies
}

export function dnsmasqArgs(zone: DnsZone, port: number): string[] {
  const args = [
    '--no-daemon',
    '--conf-file=/dev/null',
    '--no-resolv',
    '--no-hosts',
    '--bind-interfaces',
    '--listen-address=127.0.0.1',
    `--port=${port}`,
    '--pid-file=',
    '--log-queries',
    '--log-facility=-',
    `--local=/${zone.domain}/`,
    `--local-ttl=${zone.ttlSec ?? 60}`,
  ];
  for (const [name, ip] of Object.entries(zone.hosts)) args.push(`--host-record=${name},${ip}`);
  for (const s of zone.srv ?? []) args.push(`--srv-host=${s.name},${s.target},${s.port},${s.priority},${s.weight}`);
  for (const n of zone.naptr ?? [])
    args.push(`--naptr-record=${n.name},${n.order},${n.preference},s,${n.service},,${n.replacement}`);
  return args;
}

export async function startDnsmasq(zone: DnsZone): Promise<DnsServer> {
  const port = await freePort('both');
  const child = spawn(DNSMASQ_BIN, dnsmasqArgs(zone, port), { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (log += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (log += c));
  children.add(child);
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      children.delete(child);
      resolve();
    }),
  );
  const server: DnsServer = {
    server: `127.0.0.1:${port}`,
    queries: () => [...log.matchAll(/query\[(\w+)\] (\S+)/g)].map((m) => `query[${m[1]}] ${m[2]}`),
    stop: async () => {
      running.delete(server);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
  running.add(server);
  for (let waited = 0; isPortBound(port, 'udp') === false; waited += 20) {
    if (child.exitCode !== null || waited > 5000) {
      await server.stop();
      throw new Error(`dnsmasq did not start (${DNSMASQ_BIN}; apt-get install dnsmasq-base): ${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return server;
}
