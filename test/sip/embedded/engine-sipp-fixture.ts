/**
 * Shared fixture for the engine-level SIPp tests (engine-sipp*.test.ts): an EmbeddedEngine on a free port driven
 * in-process by a tiny test application, SIPp runs that are always stopped, and readers for SIPp's message log.
 */
import { afterEach } from 'vitest';
import { pino } from 'pino';
import { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import type { SipTimerBase } from '../../../src/sip/embedded/timers.ts';
import { freePort } from '../../helpers/ports.ts';
import { formatSippResult, runSipp, type SippOptions, type SippResult, type SippRun } from '../../helpers/sipp.ts';

export const TRANSPORTS = ['udp', 'tcp'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export const SDP_ANSWER = Buffer.from(
  'v=0\r\no=engine 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
    'm=audio 40000 RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n',
);
export const SDP_OFFER = Buffer.from(SDP_ANSWER.toString().replace('o=engine 1 1', 'o=engine-offer 2 2'));

const engines: EmbeddedEngine[] = [];
const sipps: SippRun[] = [];

afterEach(async () => {
  await Promise.all(sipps.splice(0).map((r) => r.stop()));
  await Promise.all(engines.splice(0).map((e) => e.stop()));
});

/** A started engine on a free port (UDP and TCP on the same number, as SIPp needs one remote port). */
export async function startEngine(timers?: Partial<SipTimerBase>): Promise<EmbeddedEngine> {
  const engine = new EmbeddedEngine({
    host: '127.0.0.1',
    port: await freePort('both'),
    transports: ['udp', 'tcp'],
    publicAddress: '127.0.0.1',
    userAgent: 'engine-sipp-test',
    logger: pino({ level: 'silent' }),
    timers,
  });
  engines.push(engine);
  await engine.start();
  return engine;
}

/** runSipp with the run registered for afterEach. */
export function sipp(opts: SippOptions): SippRun {
  const run = runSipp({ timeoutSec: 15, ...opts });
  sipps.push(run);
  return run;
}

/** A SIPp UAS on a free port, bound before the promise resolves (a TCP UAC must not connect earlier). */
export async function sippUas(opts: Omit<SippOptions, 'localPort'>): Promise<{ run: SippRun; port: number }> {
  const port = await freePort('both');
  const run = sipp({ ...opts, localPort: port });
  await run.ready;
  return { run, port };
}

/** A SIPp UAC dialling the engine. */
export async function sippUacTo(
  engine: EmbeddedEngine,
  opts: Omit<SippOptions, 'localPort' | 'remote'>,
): Promise<SippRun> {
  return sipp({ ...opts, remote: `127.0.0.1:${engine.localPort}`, localPort: await freePort('both') });
}

export interface LoggedMessage {
  direction: 'received' | 'sent';
  startLine: string;
  text: string;
  header(name: string): string | undefined;
  branch: string | undefined;
}

/** Every message in SIPp's -trace_msg log, retransmissions included, in order. */
export function sippLog(r: SippResult | undefined): LoggedMessage[] {
  const out: LoggedMessage[] = [];
  for (const block of (r?.messages ?? '').split(/^-{10,}.*$/m)) {
    const m = /message (received|sent) (?:\[\d+\] bytes ?:|\(\d+ bytes\):)\s*\n+([\s\S]*)/.exec(block);
    if (!m) continue;
    const text = m[2]!.replace(/\r/g, '').trim();
    const header = (name: string): string | undefined =>
      new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(text)?.[1]?.trim();
    out.push({
      direction: m[1] as 'received' | 'sent',
      startLine: text.split('\n', 1)[0]!.trim(),
      text,
      header,
      branch: /branch=([^;\s,]+)/.exec(header('Via') ?? '')?.[1],
    });
  }
  return out;
}

export function received(r: SippResult | undefined, startLine: RegExp, cseq?: RegExp): LoggedMessage[] {
  return sippLog(r).filter(
    (m) => m.direction === 'received' && startLine.test(m.startLine) && (!cseq || cseq.test(m.header('CSeq') ?? '')),
  );
}

/** Assertion message: the whole SIPp run, message log included. */
export function show(r: SippResult | undefined): string {
  return r ? formatSippResult(r, 12_000) : '(SIPp did not finish)';
}

/** Wait for a condition with a deadline; the message says what did not happen. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A promise with a deadline, so a missing event fails the test with a message instead of the test timeout. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The "Messages" and "Retrans" columns of a row of SIPp's final scenario screen (stdout). `row` is a regexp source
 * for the row's start: '200 <-+' (a response SIPp received as UAC), '-+> INVITE' (a request its UAS got); `nth`
 * picks among rows that look alike (the 200 to the INVITE and the 200 to the BYE).
 */
export function screenRow(r: SippResult, row: string, nth = 0): { messages: number; retrans: number } | undefined {
  const screens = r.stdout.split('Scenario Screen');
  const last = screens[screens.length - 1] ?? '';
  const m = [...last.matchAll(new RegExp(`^\\s*${row}\\s+(?:E-RTD\\d\\s+)?(\\d+)\\s+(\\d+)`, 'gm'))][nth];
  return m ? { messages: Number(m[1]), retrans: Number(m[2]) } : undefined;
}
