/**
 * Shared plumbing for the end-to-end tests: the Kallglot sandbox in this process, the real daemon as a child process
 * pointed at it and at a SIPp UAS (Telnyx), helpers to read SIPp's message logs, and diagnostics for failures. The
 * daemon runs the SIP engine engine.ts picks (the drachtio-server double comes up first when it is drachtio).
 */
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { startEngine } from './engine.ts';
import { freePort } from '../helpers/ports.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../helpers/sipp.ts';

export const TRANSLATED_NUMBER = '+4930123456'; // german-numbers rule in config/routing.yaml
export const BYPASS_NUMBER = '112'; // emergency-bypass rule

export interface E2eEnv {
  sandbox: KallglotSandbox;
  gw: GatewayProcess;
  uasPort: number;
  uacPort: number;
  /** Start SIPp; stopped by teardown(). */
  sipp(opts: SippOptions): SippRun;
  /** Gateway logs and the given SIPp runs, for assertion messages. */
  diag(...runs: Array<SippResult | undefined>): string;
  teardown(): Promise<void>;
}

export async function startE2e(env: Record<string, string> = {}): Promise<E2eEnv> {
  const sandbox = new KallglotSandbox();
  const { url } = await sandbox.start();
  const uasPort = await freePort('both');
  const uacPort = await freePort('both');
  const runs: SippRun[] = [];
  let gw: GatewayProcess;
  const engine = await startEngine();
  try {
    gw = await startGateway({
      env: {
        KALLGLOT_API_URL: url,
        KALLGLOT_API_KEY: 'sk_test_x',
        TELNYX_OUTBOUND_PROXY: `127.0.0.1:${uasPort}`,
        ...engine.env,
        ...env,
      },
      sipPort: engine.sipPort,
    });
    engine.check(gw);
  } catch (err) {
    await engine.stop();
    await sandbox.stop();
    throw err;
  }
  return {
    sandbox,
    gw,
    uasPort,
    uacPort,
    sipp(opts) {
      const run = runSipp(opts);
      runs.push(run);
      return run;
    },
    diag(...results) {
      return [
        ...results.filter((r): r is SippResult => r !== undefined).map((r) => formatSippResult(r, 6000)),
        `--- sandbox sessions\n${JSON.stringify(sandbox.sessions(), null, 1).slice(0, 3000)}`,
        `--- gateway stderr\n${gw.stderr().slice(-2000)}`,
        `--- last gateway logs\n${gw.logs
          .slice(-25)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
        engine.diag(),
      ].join('\n');
    },
    async teardown() {
      await Promise.all(runs.splice(0).map((r) => r.stop()));
      await gw.stop();
      await engine.stop();
      await sandbox.stop();
    },
  };
}

/** Polls `pred` until it returns something truthy; rejects with `what` (evaluated lazily) after timeoutMs. */
export async function waitFor<T>(
  pred: () => T | undefined | null | false,
  timeoutMs: number,
  what: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms\n${what()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface LoggedMessage {
  direction: 'sent' | 'received';
  transport: string;
  text: string;
  startLine: string;
}

/** Splits a SIPp -trace_msg log into the SIP messages it records. */
export function sippMessages(log: string | undefined): LoggedMessage[] {
  const out: LoggedMessage[] = [];
  for (const block of (log ?? '').split(/^-{20,} .*$/m)) {
    const m = /^\s*(\w+) message (sent|received)[^\n]*\n\n([\s\S]*)$/.exec(block);
    if (!m) continue;
    const text = m[3]!.replace(/\n+$/, '\n');
    out.push({
      transport: m[1]!,
      direction: m[2] as 'sent' | 'received',
      text,
      startLine: text.split(/\r?\n/, 1)[0]!.trim(),
    });
  }
  return out;
}

/** Messages matching direction and a start-line prefix ('INVITE ', 'SIP/2.0 200', ...) and optionally a CSeq method. */
export function findMessages(
  log: string | undefined,
  direction: 'sent' | 'received',
  startsWith: string,
  cseqMethod?: string,
): LoggedMessage[] {
  return sippMessages(log).filter(
    (m) =>
      m.direction === direction &&
      m.startLine.startsWith(startsWith) &&
      (cseqMethod === undefined || cseqMethodOf(m.text) === cseqMethod),
  );
}

export function headerOf(text: string, name: string): string | undefined {
  const head = text.split(/\r?\n\r?\n/, 1)[0]!;
  const re = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im');
  return re.exec(head)?.[1]?.trim();
}

function cseqMethodOf(text: string): string | undefined {
  return headerOf(text, 'CSeq')?.split(/\s+/)[1];
}

/** The body of a logged message, lines normalised to LF and trailing whitespace dropped. */
export function bodyOf(text: string): string {
  const idx = text.search(/\r?\n\r?\n/);
  if (idx < 0) return '';
  return text.slice(idx).replace(/\r\n/g, '\n').trim();
}

/** SDP lines starting with one of the prefixes ('o=', 'm=', ...). */
export function sdpLines(body: string, prefixes: string[]): string[] {
  return body
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => prefixes.some((p) => l.startsWith(p)));
}

/** One message per transaction: UDP retransmissions carry the same top Via branch and CSeq. */
export function unique(msgs: LoggedMessage[]): LoggedMessage[] {
  const seen = new Set<string>();
  return msgs.filter((m) => {
    const key = `${headerOf(m.text, 'Via')}|${headerOf(m.text, 'CSeq')}|${m.startLine}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * One call through the daemon: a SIPp UAS playing Telnyx on e.uasPort (ready first), a SIPp UAC playing the PBX
 * dialling TRANSLATED_NUMBER; both results and a diagnostics thunk. When the PBX side fails, the UAS is stopped
 * a second later so the test reports instead of waiting for its timeout.
 */
export async function callThrough(
  e: E2eEnv,
  o: { uac: string; uas: string; transport?: 'udp' | 'tcp'; uasCalls?: number; durationMs?: number },
): Promise<{ pbx: SippResult; telnyx: SippResult; d: () => string }> {
  const uasRun = e.sipp({ scenario: o.uas, localPort: e.uasPort, calls: o.uasCalls ?? 1, timeoutSec: 15 });
  await uasRun.ready;
  const pbx = await e.sipp({
    scenario: o.uac,
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    transport: o.transport ?? 'udp',
    service: TRANSLATED_NUMBER,
    calls: 1,
    durationMs: o.durationMs ?? 200,
    timeoutSec: 15,
  }).done;
  if (pbx.exitCode !== 0) setTimeout(() => void uasRun.stop(), 1000);
  const telnyx = await uasRun.done;
  return { pbx, telnyx, d: () => e.diag(pbx, telnyx) };
}
