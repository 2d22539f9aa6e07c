/**
 * The demo's three calls: what each one does, how it is placed (a SIPp UAS playing Telnyx, a SIPp UAC playing the
 * PBX, an optional Kallglot failure) and what must be true afterwards. The calls run one after another, so every
 * daemon log line between a call's start and its end belongs to it.
 */
import type { KallglotSandbox, SandboxSessionRecord } from '../../src/kallglot/sandbox.ts';
import type { GatewayProcess } from '../../test/helpers/gateway.ts';
import { freePort } from '../../test/helpers/ports.ts';
import type { DaemonLine } from './ladder.ts';
import { headerOf, type SippOutcome, startSipp, tracedMessages } from './sipp-run.ts';

/** config/routing.yaml's german-numbers rule translates this number (de → en). */
export const CALLED = '+4930123456';

export interface DemoEnv {
  gw: GatewayProcess;
  sandbox: KallglotSandbox;
  /** Where TELNYX_OUTBOUND_PROXY points: each call's UAS listens here. */
  uasPort: number;
}

export interface CallRecord {
  callId: string;
  pbx: SippOutcome;
  telnyx: SippOutcome;
  /** The daemon's log lines written while the call ran. */
  lines: DaemonLine[];
  summary: DaemonLine | undefined;
  /** Kallglot sessions the sandbox created during the call, as it recorded them. */
  sessions: SandboxSessionRecord[];
}

export interface DemoCall {
  title: string;
  story: string;
  telnyx: string;
  pbx: string;
  talkMs?: number;
  before?(env: DemoEnv): void;
  after?(env: DemoEnv): void;
  /** What went wrong, or nothing. */
  problems(r: CallRecord): string[];
  /** What the registry row must say. */
  row: { route: string; sipStatus: number };
}

function sippProblems(r: CallRecord): string[] {
  const out: string[] = [];
  const why = (o: SippOutcome): string => o.errors.trim().split('\n').slice(-1)[0] ?? '';
  for (const [side, o] of [
    ["the PBX's", r.pbx],
    ["Telnyx's", r.telnyx],
  ] as const) {
    if (o.stopped) out.push(`${side} SIPp did not finish its scenario and was stopped`);
    else if (o.exitCode !== 0) out.push(`${side} SIPp failed (exit ${o.exitCode}) ${why(o)}`.trim());
  }
  if (r.summary === undefined) out.push('the daemon logged no call summary');
  return out;
}

function check(out: string[], what: string, actual: unknown, expected: unknown): void {
  if (actual !== expected) out.push(`${what}: expected ${String(expected)}, got ${String(actual)}`);
}

export const CALLS: DemoCall[] = [
  {
    title: 'Translated call',
    story: `The PBX dials ${CALLED}; the gateway creates a Kallglot session and calls Telnyx at the session's URI. Telnyx answers, they talk for half a second, the PBX hangs up.`,
    telnyx: 'uas-answer-200-expect-bye.xml',
    pbx: 'uac-invite-200-then-bye.xml',
    talkMs: 500,
    problems(r) {
      const out = sippProblems(r);
      check(out, 'route', r.summary?.route, 'translated');
      check(out, 'Kallglot sessions created', r.sessions.length, 1);
      check(out, 'times the session was ended', r.sessions[0]?.endCalls, 1);
      return out;
    },
    row: { route: 'translated', sipStatus: 200 },
  },
  {
    title: 'Kallglot outage',
    story:
      'Kallglot answers every create with 503. The gateway retries within its deadline, then falls back to the untranslated direct route: the call is still answered.',
    telnyx: 'uas-answer-200-expect-bye.xml',
    pbx: 'uac-invite-200-then-bye.xml',
    talkMs: 500,
    before: ({ sandbox }) => sandbox.injectFailure({ endpoint: 'create', status: 503 }),
    after: ({ sandbox }) => sandbox.clearFailures(),
    problems(r) {
      const out = sippProblems(r);
      check(out, 'route', r.summary?.route, 'fallback');
      check(out, 'Kallglot sessions created', r.sessions.length, 0);
      return out;
    },
    row: { route: 'fallback', sipStatus: 200 },
  },
  {
    title: 'Caller hangs up while it rings',
    story:
      'Telnyx rings and never answers; the PBX gives up with CANCEL. The gateway cancels the Telnyx leg, answers the PBX 487 and ends the session.',
    telnyx: 'uas-ring-expect-cancel.xml',
    pbx: 'uac-cancel-expect-487.xml',
    problems(r) {
      const out = sippProblems(r);
      check(out, 'SIP status', r.summary?.sipStatus, 487);
      const open = r.sessions.filter((s) => s.endedAt === undefined).map((s) => s.id);
      if (open.length > 0) out.push(`Kallglot session(s) left open: ${open.join(', ')}`);
      return out;
    },
    row: { route: 'translated', sipStatus: 487 },
  },
];

async function waitUntil(probe: () => boolean, timeoutMs: number): Promise<boolean> {
  for (const until = Date.now() + timeoutMs; Date.now() < until; await new Promise((r) => setTimeout(r, 25))) {
    if (probe()) return true;
  }
  return probe();
}

/** The PBX's Call-ID, which the daemon's lines of the call carry as callId. */
function pbxCallId(pbx: SippOutcome): string {
  const invite = tracedMessages(pbx.messages).find((m) => m.direction === 'sent' && m.startLine.startsWith('INVITE'));
  return invite !== undefined ? (headerOf(invite.text, 'Call-ID') ?? '') : '';
}

export async function placeCall(env: DemoEnv, call: DemoCall): Promise<CallRecord> {
  const { gw, sandbox } = env;
  const firstLine = gw.logs.length;
  const known = new Set(sandbox.sessions().map((s) => s.id));
  call.before?.(env);
  try {
    const telnyxSide = startSipp({ scenario: call.telnyx, localPort: env.uasPort });
    await telnyxSide.ready;
    const pbxSide = startSipp({
      scenario: call.pbx,
      localPort: await freePort('both'),
      remote: `127.0.0.1:${gw.sipPort}`,
      service: CALLED,
      ...(call.talkMs !== undefined ? { pauseMs: call.talkMs } : {}),
    });
    const pbx = await pbxSide.done;
    // The UAS ends with the call; give it a moment for its last message, then stop it whatever its state.
    const timer = setTimeout(() => void telnyxSide.stop(), 3000);
    const telnyx = await telnyxSide.done;
    clearTimeout(timer);
    const callId = pbxCallId(pbx);
    const fresh = (): SandboxSessionRecord[] => sandbox.sessions().filter((s) => !known.has(s.id));
    const summaryOf = (): DaemonLine | undefined =>
      gw.logs.find((l) => l.msg === 'call summary' && l.callId === callId);
    // A session's end is sent after the summary; the ladder wants the daemon's line for it too.
    const endLogged = (id: string): boolean =>
      gw.logs.some((l) => l.msg.startsWith('kallglot request') && l.op === 'end' && l.sessionId === id);
    await waitUntil(() => summaryOf() !== undefined && fresh().every((s) => endLogged(s.id)), 5000);
    return { callId, pbx, telnyx, lines: gw.logs.slice(firstLine), summary: summaryOf(), sessions: fresh() };
  } finally {
    call.after?.(env);
  }
}
