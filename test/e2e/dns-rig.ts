/**
 * Rig for the RFC 3263 end-to-end tests: a real DNS server (dnsmasq) serving NAPTR/SRV/A records for `kg.test`,
 * Telnyx SBCs on loopback aliases (SIPp UAS instances, or "dead" SBCs: a UDP socket of the test that counts what
 * reaches it and never answers), the real daemon with TELNYX_SIP_DOMAIN=kg.test, DNS_SERVERS pointing at dnsmasq and
 * no outbound proxy, the Kallglot sandbox, and SIPp playing the PBX. `stopDnsRig()` (afterEach) stops everything.
 */
import dgram from 'node:dgram';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { type DnsServer, type DnsZone, startDnsmasq } from '../helpers/dnsmasq.ts';
import { type GatewayProcess, startGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../helpers/sipp.ts';
import { received, type SeenMessage } from './failure-rig.ts';

export const DOMAIN = 'kg.test';
/** Dialled number: config/routing.yaml's german-numbers rule translates it. */
export const CALLED = '+4930123456';
export const DIRECT_URI = `sip:${CALLED}@${DOMAIN}`;
export const TRANSLATED_URI = /^sip:sess_[0-9a-f]+@kg\.test$/;
export const TARGET_TIMEOUT_MS = 1000;
export const UAS_SCENARIO = 'uas-options-200-or-answer-200-expect-bye.xml';

/** A dead SBC whose address still routes: counts every datagram, answers none. */
export class DeadSbc {
  readonly address: string;
  readonly port: number;
  readonly datagrams: string[] = [];
  readonly #socket: dgram.Socket;

  constructor(address: string, port: number, socket: dgram.Socket) {
    this.address = address;
    this.port = port;
    this.#socket = socket;
    socket.on('message', (m) => this.datagrams.push(m.toString('latin1')));
  }

  static async start(address: string, port: number): Promise<DeadSbc> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => resolve());
    });
    return new DeadSbc(address, port, socket);
  }

  /** INVITEs received, one per client transaction (retransmissions share a branch): Request-URI and branch. */
  invites(): Array<{ uri: string; branch: string }> {
    const byBranch = new Map<string, string>();
    for (const d of this.datagrams) {
      const uri = /^INVITE (\S+) SIP\/2\.0/.exec(d)?.[1];
      const branch = /^Via:.*branch=([^;\s]+)/im.exec(d)?.[1];
      if (uri && branch) byBranch.set(branch, uri);
    }
    return [...byBranch].map(([branch, uri]) => ({ uri, branch }));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }
}

export interface DnsRig {
  sandbox: KallglotSandbox;
  dns: DnsServer;
  gw: GatewayProcess;
  /** A SIPp UAS (UAS_SCENARIO) playing one SBC at address:port; waits until it listens. */
  startUas(address: string, port: number, opts?: Partial<SippOptions>): Promise<SippRun>;
  /** SIPp playing the PBX, run to completion. */
  runPbx(scenario: string, opts?: Partial<SippOptions>): Promise<SippResult>;
  getJson(path: string): Promise<Record<string, unknown>>;
  getText(path: string): Promise<string>;
  diag(...runs: Array<SippResult | undefined>): string;
}

interface Started {
  sandbox?: KallglotSandbox;
  dns?: DnsServer;
  gw?: GatewayProcess;
  sipp: SippRun[];
}
let current: Started | undefined;
/** Dead SBCs are bound before the rig starts (their ports go into the DNS zone); stopDnsRig closes them. */
const deadSbcs: DeadSbc[] = [];

/** Ports for SBCs on the given loopback addresses (free there for UDP and TCP). */
export async function sbcPorts(...addresses: string[]): Promise<number[]> {
  const ports: number[] = [];
  for (const a of addresses) ports.push(await freePort('both', a));
  return ports;
}

export async function deadSbc(address: string, port: number): Promise<DeadSbc> {
  const sbc = await DeadSbc.start(address, port);
  deadSbcs.push(sbc);
  return sbc;
}

export async function startDnsRig(zone: Omit<DnsZone, 'domain'>, env: Record<string, string> = {}): Promise<DnsRig> {
  const started: Started = { sipp: [] };
  current = started;
  started.sandbox = new KallglotSandbox({ apiKey: 'sk_test_x' });
  const { url } = await started.sandbox.start(0, '127.0.0.1');
  started.dns = await startDnsmasq({ domain: DOMAIN, ...zone });
  const gw = await startGateway({
    env: {
      KALLGLOT_API_URL: url,
      KALLGLOT_API_KEY: 'sk_test_x',
      TELNYX_SIP_DOMAIN: DOMAIN,
      DNS_SERVERS: started.dns.server,
      TELNYX_TARGET_TIMEOUT_MS: String(TARGET_TIMEOUT_MS),
      TELNYX_PROBE_INTERVAL_SEC: '0',
      ...env,
    },
  });
  started.gw = gw;
  return rigOf(started, gw);
}

function rigOf(started: Started, gw: GatewayProcess): DnsRig {
  const results: SippResult[] = [];
  const base = `http://127.0.0.1:${gw.httpPort}`;
  return {
    sandbox: started.sandbox!,
    dns: started.dns!,
    gw,
    async startUas(address, port, opts = {}) {
      const run = runSipp({
        scenario: UAS_SCENARIO,
        localIp: address,
        localPort: port,
        calls: 10_000,
        timeoutSec: 60,
        ...opts,
      });
      started.sipp.push(run);
      void run.done.then((r) => results.push(r));
      await run.ready;
      return run;
    },
    async runPbx(scenario, opts = {}) {
      const run = runSipp({
        scenario,
        remote: `127.0.0.1:${gw.sipPort}`,
        localPort: await freePort('both'),
        calls: 1,
        service: CALLED,
        timeoutSec: 30,
        ...opts,
      });
      started.sipp.push(run);
      const r = await run.done;
      results.push(r);
      return r;
    },
    getJson: async (path) => (await fetch(`${base}${path}`)).json() as Promise<Record<string, unknown>>,
    getText: async (path) => (await fetch(`${base}${path}`)).text(),
    diag(...runs) {
      const shown = runs.length > 0 ? runs : results;
      return [
        ...shown.map((r) => (r ? formatSippResult(r, 4000) : '(no SIPp result)')),
        `--- dnsmasq queries\n${started.dns?.queries().join('\n')}`,
        `--- gateway stderr\n${gw.stderr().slice(-2000)}`,
        `--- gateway logs (last 40)\n${gw.logs
          .slice(-40)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      ].join('\n');
    },
  };
}

export async function stopDnsRig(): Promise<void> {
  await Promise.all(deadSbcs.splice(0).map((d) => d.close()));
  const s = current;
  current = undefined;
  if (!s) return;
  await Promise.all(s.sipp.map((r) => r.stop()));
  await s.gw?.stop();
  await s.dns?.stop();
  await s.sandbox?.stop();
}

/** INVITEs a SIPp UAS received (retransmissions dropped), from its message log. */
export function invitesSeen(r: SippResult | undefined): SeenMessage[] {
  return received(r).filter((m) => m.method === 'INVITE');
}

export async function waitUntil<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs: number,
  what: string,
) {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
