/**
 * Rig for the durability tests: one KallglotSandbox in the test process that outlives daemon restarts, one DATA_DIR
 * (the call registry) shared by every daemon started in a test, a SIPp UAS port playing Telnyx, and readers for the
 * registry (node:sqlite directly, and GET /calls/:callId with ADMIN_TOKEN). `teardown()` (afterEach) stops everything.
 * The message-log helpers and waitFor come from ../harness.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { KallglotSandbox } from '../../../src/kallglot/sandbox.ts';
import type { CallRow, PendingEnd } from '../../../src/registry/call-registry.ts';
import type { UnresolvedCreateRow } from '../../../src/registry/port.ts';
import { startGateway, type GatewayProcess } from '../../helpers/gateway.ts';
import { freePort } from '../../helpers/ports.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../../helpers/sipp.ts';

import { TRANSLATED_NUMBER, waitFor } from '../harness.ts';

export { TRANSLATED_NUMBER, findMessages, headerOf, waitFor } from '../harness.ts';

export const ADMIN_TOKEN = 'durability-admin-token';
export const TEST_TIMEOUT_MS = 90_000;

type SippExtra = Partial<Omit<SippOptions, 'scenario' | 'localPort' | 'remote' | 'role'>>;

export interface DurabilityRig {
  sandbox: KallglotSandbox;
  dataDir: string;
  uasPort: number;
  /** The daemon started last. */
  readonly gw: GatewayProcess;
  /** Start a daemon on this rig's DATA_DIR, sandbox and UAS port (again after a crash: a restart). */
  startGateway(env?: Record<string, string>, opts?: { waitReady?: boolean }): Promise<GatewayProcess>;
  /** The Telnyx-side SIPp UAS on uasPort, once it listens. */
  startUas(scenario: string, opts?: SippExtra): Promise<SippRun>;
  /** A PBX-side SIPp UAC toward the current daemon, on a fresh local port. */
  startPbx(scenario: string, opts?: SippExtra): Promise<SippRun>;
  /** SIPp results, every daemon's stderr and recent logs, the sandbox's sessions and the registry, for messages. */
  diag(...runs: Array<SippResult | undefined>): string;
  teardown(): Promise<void>;
}

export async function startRig(): Promise<DurabilityRig> {
  const sandbox = new KallglotSandbox({ apiKey: 'sk_test_durability' });
  const { url } = await sandbox.start(0, '127.0.0.1');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-durability-'));
  const uasPort = await freePort('both');
  const gateways: GatewayProcess[] = [];
  const runs: SippRun[] = [];
  const baseEnv = {
    KALLGLOT_API_URL: url,
    KALLGLOT_API_KEY: 'sk_test_durability',
    TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
    ADMIN_TOKEN,
  };
  const track = (run: SippRun): SippRun => {
    runs.push(run);
    return run;
  };
  const rig: DurabilityRig = {
    sandbox,
    dataDir,
    uasPort,
    get gw() {
      const g = gateways[gateways.length - 1];
      if (!g) throw new Error('no gateway started yet');
      return g;
    },
    async startGateway(env = {}, opts = {}) {
      const gw = await startGateway({ env: { ...baseEnv, ...env }, dataDir, waitReady: opts.waitReady });
      gateways.push(gw);
      return gw;
    },
    async startUas(scenario, opts = {}) {
      const run = track(runSipp({ scenario, role: 'uas', localPort: uasPort, calls: 1, timeoutSec: 30, ...opts }));
      await run.ready;
      return run;
    },
    async startPbx(scenario, opts = {}) {
      const localPort = await freePort('both');
      return track(
        runSipp({
          scenario,
          remote: `127.0.0.1:${rig.gw.sipPort}`,
          localPort,
          calls: 1,
          service: TRANSLATED_NUMBER,
          timeoutSec: 30,
          ...opts,
        }),
      );
    },
    diag(...results) {
      let registry: string;
      try {
        const unresolved = unresolvedCreates(dataDir);
        registry = JSON.stringify({ calls: callRows(dataDir), pending: pendingEnds(dataDir), unresolved }, null, 1);
      } catch (err) {
        registry = `(unreadable: ${(err as Error).message})`;
      }
      return [
        ...results.map((r) => (r ? formatSippResult(r, 5000) : '(no SIPp result)')),
        `--- sandbox stats ${JSON.stringify(sandbox.stats())}`,
        `--- sandbox sessions\n${JSON.stringify(sandbox.sessions(), null, 1).slice(0, 3000)}`,
        `--- registry\n${registry.slice(0, 4000)}`,
        ...gateways.map((g, i) =>
          [
            `--- gateway #${i + 1} stderr\n${g.stderr().slice(-1500)}`,
            `--- gateway #${i + 1} logs (last 30)\n${g.logs
              .slice(-30)
              .map((l) => JSON.stringify(l))
              .join('\n')}`,
          ].join('\n'),
        ),
      ].join('\n');
    },
    async teardown() {
      await Promise.all(runs.splice(0).map((r) => r.stop()));
      await Promise.all(gateways.map((g) => g.stop()));
      await sandbox.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return rig;
}

/** Runs one query on the registry with a short-lived read-only connection (the daemon may have it open, WAL mode). */
function query<T>(dataDir: string, sql: string): T[] {
  const file = path.join(dataDir, 'gateway.db');
  if (!fs.existsSync(file)) return [];
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    return db.prepare(sql).all() as unknown as T[];
  } finally {
    db.close();
  }
}

export function callRows(dataDir: string): CallRow[] {
  return query<CallRow>(dataDir, 'SELECT * FROM calls ORDER BY invite_at');
}

export function pendingEnds(dataDir: string): PendingEnd[] {
  return query<PendingEnd>(dataDir, 'SELECT * FROM pending_session_ends ORDER BY requested_at');
}

export function unresolvedCreates(dataDir: string): UnresolvedCreateRow[] {
  return query<UnresolvedCreateRow>(dataDir, 'SELECT * FROM unresolved_creates ORDER BY failed_at');
}

/** GET /calls/:callId on the admin API of a running daemon. */
export async function adminCall(gw: GatewayProcess, callId: string): Promise<{ status: number; call?: CallRow }> {
  const res = await fetch(`http://127.0.0.1:${gw.httpPort}/calls/${encodeURIComponent(callId)}`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const body = (await res.json()) as { call?: CallRow };
  return { status: res.status, call: body.call };
}

/** Waits for the "call answered and bridged" log line of the current daemon (count of them, default 1). */
export async function waitForAnswered(rig: DurabilityRig, count = 1, timeoutMs = 15_000): Promise<void> {
  await waitFor(
    () => rig.gw.logs.filter((l) => l.msg === 'call answered and bridged').length >= count,
    timeoutMs,
    () => rig.diag(),
  );
}

/** Polls GET /calls/:callId (admin API) until the row satisfies `pred`; fails with `diag` after timeoutMs. */
export async function waitForAdminCall(
  gw: GatewayProcess,
  callId: string,
  pred: (c: CallRow) => boolean,
  diag: () => string,
  timeoutMs = 15_000,
): Promise<CallRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, call } = await adminCall(gw, callId);
    if (status !== 200) throw new Error(`GET /calls/${callId} answered ${status}\n${diag()}`);
    if (call && pred(call)) return call;
    if (Date.now() > deadline)
      throw new Error(`call ${callId} not as expected within ${timeoutMs} ms: ${JSON.stringify(call)}\n${diag()}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}
