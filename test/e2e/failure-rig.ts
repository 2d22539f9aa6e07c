/**
 * Shared rig for the end-to-end failure-path tests: a KallglotSandbox in the test process, the real daemon
 * (`node src/main.ts`) pointed at it, a SIPp UAS playing Telnyx (TELNYX_OUTBOUND_PROXY) and a SIPp UAC playing the
 * PBX, through the SIP engine engine.ts picks. Everything started here is stopped by `stopRig()` (call it from
 * afterEach).
 */
import { createHash } from 'node:crypto';
import { KallglotSandbox, type SandboxSessionRecord } from '../../src/kallglot/sandbox.ts';
import { startGateway, type GatewayProcess, type LogLine } from '../helpers/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../helpers/sipp.ts';
import { type EngineRig, startEngine } from './engine.ts';

/** Dialled number: config/routing.yaml's german-numbers rule translates it (de → en). */
export const CALLED = '+4930123456';
export const DIRECT_URI = `sip:${CALLED}@sip.telnyx.com`;
export const TRANSLATED_URI = /^sip:sess_[0-9a-f]+@sip\.telnyx\.com$/;
export const E2E_TIMEOUT_MS = 60_000;

type SippExtra = Partial<Omit<SippOptions, 'scenario' | 'localPort' | 'remote'>>;

export interface Rig {
  sandbox: KallglotSandbox;
  gw: GatewayProcess;
  uasPort: number;
  /** Start the Telnyx-side UAS on uasPort and wait until it listens. */
  startUas(scenario: string, opts?: SippExtra): Promise<SippRun>;
  /** Run the PBX-side UAC against the gateway to completion. */
  runPbx(scenario: string, opts?: SippExtra): Promise<SippResult>;
  /** SIPp runs' logs and the gateway's recent log lines, for assertion messages. */
  diag(...runs: Array<SippResult | undefined>): string;
}

interface Started {
  sandbox?: KallglotSandbox;
  gw?: GatewayProcess;
  engine?: EngineRig;
  sipp: SippRun[];
}
let current: Started | undefined;

export async function startRig(env: Record<string, string> = {}): Promise<Rig> {
  const started: Started = { sipp: [] };
  current = started;
  const sandbox = new KallglotSandbox({ apiKey: 'sk_test_x' });
  started.sandbox = sandbox;
  const { url } = await sandbox.start(0, '127.0.0.1');
  const uasPort = await freePort('both');
  const engine = await startEngine();
  started.engine = engine;
  const gw = await startGateway({
    env: {
      KALLGLOT_API_URL: url,
      KALLGLOT_API_KEY: 'sk_test_x',
      TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
      ...engine.env,
      ...env,
    },
    sipPort: engine.sipPort,
  });
  started.gw = gw;
  engine.check(gw);
  const results: SippResult[] = [];
  return {
    sandbox,
    gw,
    uasPort,
    async startUas(scenario, opts = {}) {
      const run = runSipp({ scenario, localPort: uasPort, role: 'uas', calls: 1, timeoutSec: 30, ...opts });
      started.sipp.push(run);
      void run.done.then((r) => results.push(r));
      await run.ready;
      return run;
    },
    async runPbx(scenario, opts = {}) {
      const localPort = await freePort('both');
      const run = runSipp({
        scenario,
        remote: `127.0.0.1:${gw.sipPort}`,
        localPort,
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
    diag(...runs) {
      const shown = runs.length > 0 ? runs : results;
      const logs = gw.logs
        .slice(-40)
        .map((l) => JSON.stringify(l))
        .join('\n');
      return [
        ...shown.map((r) => (r ? formatSippResult(r, 6000) : '(no SIPp result)')),
        `--- gateway stderr\n${gw.stderr().slice(-2000)}`,
        `--- gateway logs (last 40)\n${logs}`,
        `--- sandbox sessions\n${JSON.stringify(sandbox.sessions(), null, 1)}`,
        engine.diag(),
      ].join('\n');
    },
  };
}

export async function stopRig(): Promise<void> {
  const s = current;
  current = undefined;
  if (!s) return;
  await Promise.all(s.sipp.map((r) => r.stop()));
  await s.gw?.stop();
  await s.engine?.stop();
  await s.sandbox?.stop();
}

export async function waitFor<T>(
  probe: () => T | undefined | false,
  timeoutMs: number,
  what: string,
  diag?: () => string,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > until)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${diag ? `\n${diag()}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** The one call summary of the run, once logged. */
export function waitForSummary(rig: Rig, timeoutMs = 15_000): Promise<LogLine> {
  return waitFor(
    () => rig.gw.summaries()[0],
    timeoutMs,
    'the call summary',
    () => rig.diag(),
  );
}

/** Wait until every session the sandbox created has been ended (and there is at least `count`). */
export function waitForSessionsEnded(rig: Rig, count: number, timeoutMs = 15_000): Promise<SandboxSessionRecord[]> {
  return waitFor(
    () => {
      const s = rig.sandbox.sessions();
      return s.length === count && s.every((x) => x.endCalls > 0) ? s : undefined;
    },
    timeoutMs,
    `${count} ended Kallglot session(s)`,
    () => rig.diag(),
  );
}

export interface SeenMessage {
  /** Request-URI for requests, status code as text for responses. */
  startLine: string;
  method?: string;
  uri?: string;
  status?: number;
  callId: string;
  cseq: string;
  text: string;
}

/**
 * Messages SIPp received, parsed from its -trace_msg log, retransmissions dropped (same start line, Call-ID, CSeq
 * and Via branch).
 */
export function received(r: SippResult | undefined): SeenMessage[] {
  const log = r?.messages ?? '';
  const out: SeenMessage[] = [];
  const seen = new Set<string>();
  const blocks = log.split(/^-{10,}.*$/m);
  for (const block of blocks) {
    const m = /message received \[\d+\] bytes :\s*\n+([\s\S]*)/.exec(block);
    if (!m) continue;
    const text = m[1]!.replace(/\r/g, '');
    const startLine = text.split('\n', 1)[0]!.trim();
    const header = (name: string): string => new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(text)?.[1]?.trim() ?? '';
    const key = `${startLine}|${header('Call-ID')}|${header('CSeq')}|${/branch=([^;\s,]+)/.exec(header('Via'))?.[1] ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const req = /^([A-Z]+) (\S+) SIP\/2\.0$/.exec(startLine);
    const res = /^SIP\/2\.0 (\d{3})/.exec(startLine);
    out.push({
      startLine,
      method: req?.[1],
      uri: req?.[2],
      status: res ? Number(res[1]) : undefined,
      callId: header('Call-ID'),
      cseq: header('CSeq'),
      text,
    });
  }
  return out;
}

/** Request-URIs of the INVITEs SIPp received (retransmissions dropped), in order. */
export function inviteUris(r: SippResult | undefined): string[] {
  return received(r)
    .filter((m) => m.method === 'INVITE')
    .map((m) => m.uri!);
}

export function header(msg: SeenMessage, name: string): string | undefined {
  return new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(msg.text)?.[1]?.trim();
}

/** Check an RFC 2617 digest credential (as a Proxy-Authorization/Authorization value) against the password. */
export function digestValid(credential: string, method: string, password: string): boolean {
  const p = new Map<string, string>();
  for (const m of credential.replace(/^\s*Digest\s+/i, '').matchAll(/(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))/g)) {
    p.set(m[1]!.toLowerCase(), m[2] ?? m[3] ?? '');
  }
  const md5 = (s: string): string => createHash('md5').update(s).digest('hex');
  const ha1 = md5(`${p.get('username')}:${p.get('realm')}:${password}`);
  const ha2 = md5(`${method}:${p.get('uri')}`);
  const qop = p.get('qop');
  const expected = qop
    ? md5(`${ha1}:${p.get('nonce')}:${p.get('nc')}:${p.get('cnonce')}:${qop}:${ha2}`)
    : md5(`${ha1}:${p.get('nonce')}:${ha2}`);
  return expected === p.get('response');
}
