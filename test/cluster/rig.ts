/**
 * Rig for the cluster tests (`npm run test:cluster`): two real daemons, gateway A on 127.0.0.11 and B on
 * 127.0.0.12, behind a real Kamailio running deploy/kamailio/dispatcher.cfg on 127.0.0.10, sharing one registry
 * in a real PostgreSQL (one database per test), with one KallglotSandbox in the test process that outlives them
 * all and a SIPp UAS on 127.0.0.1 playing Telnyx for both. The PBX is a SIPp UAC sending to Kamailio.
 *
 * Timings are shortened so a test waits seconds, not minutes: leases renewed every second, an instance dead after
 * 4 s, Kamailio probing every second and giving a silent gateway 1 s before the next one gets the call.
 */
import pg from 'pg';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import type { CallRow } from '../../src/registry/port.ts';
import { TRANSLATED_NUMBER } from '../e2e/harness.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { type Dispatcher, startDispatcher } from '../helpers/kamailio-dispatcher.ts';
import { freePort } from '../helpers/ports.ts';
import type { PostgresServer } from '../helpers/postgres.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../helpers/sipp.ts';
import { generateSigningKey, type SigningKey } from '../telnyx/harness.ts';

export const HOSTS = { kamailio: '127.0.0.10', A: '127.0.0.11', B: '127.0.0.12' } as const;
/** Short by default; CLUSTER_DEAD_AFTER_SEC / CLUSTER_LEASE_INTERVAL_SEC measure the takeover with other values. */
export const DEAD_AFTER_SEC = Number(process.env.CLUSTER_DEAD_AFTER_SEC || 4);
export const LEASE_INTERVAL_SEC = Number(process.env.CLUSTER_LEASE_INTERVAL_SEC || 1);
export const ADMIN_TOKEN = 'cluster-admin-token';
export const INSTANCE_IDS = { A: 'gw-a', B: 'gw-b' } as const;

export type GatewayName = 'A' | 'B';
const START_TIMEOUT_MS = 60_000;
type SippExtra = Partial<Omit<SippOptions, 'scenario' | 'localPort' | 'remote' | 'role'>>;

export interface ClusterRig {
  url: string;
  sandbox: KallglotSandbox;
  key: SigningKey;
  sipPorts: Record<GatewayName, number>;
  readonly dispatcher: Dispatcher;
  /** The daemon started last under this name. */
  gw(name: GatewayName): GatewayProcess;
  startGateway(name: GatewayName, env?: Record<string, string>): Promise<GatewayProcess>;
  /** Kamailio, once the gateways it should see are up (it probes them from its start). */
  startDispatcher(): Promise<Dispatcher>;
  startUas(scenario: string, opts?: SippExtra): Promise<SippRun>;
  /** A PBX-side SIPp UAC toward Kamailio. */
  startPbx(scenario: string, opts?: SippExtra): Promise<SippRun>;
  /** Rows of the shared registry. */
  query<T extends pg.QueryResultRow = CallRow>(sql: string, values?: unknown[]): Promise<T[]>;
  diag(...runs: Array<SippResult | undefined>): string;
  teardown(): Promise<void>;
}

export async function startCluster(postgres: PostgresServer): Promise<ClusterRig> {
  const url = await postgres.createDatabase({ password: 'registry-secret' });
  const sandbox = new KallglotSandbox({ apiKey: 'sk_test_cluster' });
  const { url: kallglotUrl } = await sandbox.start(0, '127.0.0.1');
  const key = generateSigningKey();
  const uasPort = await freePort('both');
  const sipPorts = { A: await freePort('both', HOSTS.A), B: await freePort('both', HOSTS.B) };
  const dispatcherPort = await freePort('udp', HOSTS.kamailio);
  const started: Array<{ name: GatewayName; gw: GatewayProcess }> = [];
  const runs: SippRun[] = [];
  const pool = new pg.Pool({ connectionString: url, max: 2 });
  let dispatcher: Dispatcher | undefined;
  const env = (name: GatewayName): Record<string, string> => ({
    REGISTRY_URL: url,
    INSTANCE_ID: INSTANCE_IDS[name],
    INSTANCE_DEAD_AFTER_SEC: String(DEAD_AFTER_SEC),
    REGISTRY_LEASE_INTERVAL_SEC: String(LEASE_INTERVAL_SEC),
    SIP_HOST: HOSTS[name],
    SIP_PUBLIC_ADDRESS: HOSTS[name],
    KALLGLOT_API_URL: kallglotUrl,
    KALLGLOT_API_KEY: 'sk_test_cluster',
    TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
    TELNYX_PUBLIC_KEY: key.publicKeyBase64,
    ADMIN_TOKEN,
  });
  const track = (run: SippRun): SippRun => {
    runs.push(run);
    return run;
  };
  const rig: ClusterRig = {
    url,
    sandbox,
    key,
    sipPorts,
    get dispatcher() {
      if (!dispatcher) throw new Error('no dispatcher started');
      return dispatcher;
    },
    gw(name) {
      const found = started.filter((s) => s.name === name).at(-1);
      if (!found) throw new Error(`gateway ${name} not started`);
      return found.gw;
    },
    async startGateway(name, extra = {}) {
      const gw = await startGateway({ env: { ...env(name), ...extra }, sipPort: sipPorts[name], waitReady: false });
      started.push({ name, gw });
      // Longer than the helper's own wait: three daemons, Kamailio and PostgreSQL share a small CI machine.
      await Promise.race([
        gw.waitForLog((l) => l.msg === 'kallglot-sip-gateway started', START_TIMEOUT_MS),
        gw.exited.then((code) => {
          throw new Error(`gateway ${name} exited (${code}) during start-up: ${gw.stderr().slice(-2000)}`);
        }),
      ]);
      return gw;
    },
    async startDispatcher() {
      dispatcher = await startDispatcher({
        host: HOSTS.kamailio,
        port: dispatcherPort,
        gateways: (['A', 'B'] as const).map((n) => ({ address: `${HOSTS[n]}:${sipPorts[n]}`, name: INSTANCE_IDS[n] })),
        pingIntervalSec: 1,
        gatewayTimeoutMs: 1000,
      });
      return dispatcher;
    },
    async startUas(scenario, opts = {}) {
      const run = track(runSipp({ scenario, role: 'uas', localPort: uasPort, calls: 1, timeoutSec: 60, ...opts }));
      await run.ready;
      return run;
    },
    async startPbx(scenario, opts = {}) {
      const localPort = await freePort('both');
      return track(
        runSipp({
          scenario,
          remote: rig.dispatcher.address,
          localPort,
          calls: 1,
          service: TRANSLATED_NUMBER,
          timeoutSec: 60,
          ...opts,
        }),
      );
    },
    async query<T extends pg.QueryResultRow>(sql: string, values: unknown[] = []) {
      return (await pool.query<T>(sql, values)).rows;
    },
    diag(...results) {
      return [
        ...results.map((r) => (r ? formatSippResult(r, 3000) : '(no SIPp result)')),
        `--- sandbox sessions\n${JSON.stringify(sandbox.sessions(), null, 1).slice(0, 3000)}`,
        `--- kamailio log (tail)\n${dispatcher?.log().slice(-2500) ?? '(not started)'}`,
        ...started.map(({ name, gw }) =>
          [
            `--- gateway ${name} (pid ${gw.pid}) stderr\n${gw.stderr().slice(-1000)}`,
            `--- gateway ${name} logs (last 25)\n${gw.logs
              .slice(-25)
              .map((l) => JSON.stringify(l))
              .join('\n')}`,
          ].join('\n'),
        ),
      ].join('\n');
    },
    async teardown() {
      await Promise.all(runs.splice(0).map((r) => r.stop()));
      await Promise.all(started.map(({ gw }) => gw.stop()));
      await dispatcher?.stop();
      await pool.end();
      await sandbox.stop();
    },
  };
  return rig;
}

/** The calls a gateway logged a summary for. */
export function summaries(gw: GatewayProcess): Array<Record<string, unknown>> {
  return gw.summaries().filter((s) => s.route !== 'rejected');
}

/** Number of log lines of a gateway with this message. */
export function countLogs(gw: GatewayProcess, msg: string): number {
  return gw.logs.filter((l) => l.msg === msg).length;
}

/** Polls `pred` (which may read the registry, asynchronously) until it is truthy; fails with `what` after timeoutMs. */
export async function waitFor<T>(
  pred: () => T | Promise<T>,
  timeoutMs: number,
  what: () => string = () => '',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms\n${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
