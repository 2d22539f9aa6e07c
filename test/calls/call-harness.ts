/**
 * Wires a real CallManager (admission, routing, CallSession, SessionEnder) to the fake engine and a fake Kallglot
 * whose createSession the test settles by hand. Shared by the call-session test files.
 */
import { fileURLToPath } from 'node:url';
import { pino, type Logger } from 'pino';
import { expect } from 'vitest';
import { Admission } from '../../src/calls/admission.ts';
import { CallManager } from '../../src/calls/call-manager.ts';
import { SessionEnder } from '../../src/sessions/ender.ts';
import type { CallSummary } from '../../src/calls/types.ts';
import { loadConfig, type GatewayConfig } from '../../src/config/load.ts';
import type { CreateSessionInput, EndReason, KallglotSession } from '../../src/kallglot/types.ts';
import { loadRules } from '../../src/routing/load.ts';
import type { RuleSet } from '../../src/routing/types.ts';
import {
  deferred,
  FakeEngine,
  settle,
  type Deferred,
  type FakeInboundCall,
  type FakeOutboundCall,
} from './fake-engine.ts';

export const SHIPPED_RULES = loadRules(fileURLToPath(new URL('../../config/routing.yaml', import.meta.url)));

export const PBX_SDP = Buffer.from('v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\nm=audio 4000 RTP/AVP 0\r\n');
export const TELNYX_SDP = Buffer.from('v=0\r\no=telnyx 7 7 IN IP4 192.0.2.7\r\nm=audio 30000 RTP/AVP 0\r\n');

export interface Harness {
  engine: FakeEngine;
  manager: CallManager;
  admission: Admission;
  config: GatewayConfig;
  /** Every createSession call, with the deferred the test settles. */
  creates: Array<{ input: CreateSessionInput; reply: Deferred<KallglotSession> }>;
  /** Every endSession call reaching the (fake) Kallglot API. */
  ends: Array<{ id: string; reason: EndReason }>;
  summaries: CallSummary[];
  /** Resolve the n-th pending createSession with session `id`, and let the call logic run. */
  createOk(id: string, n?: number): Promise<void>;
  createFails(err: unknown, n?: number): Promise<void>;
  /** The n-th outbound INVITE (0-based), asserting it exists. */
  invite(n: number): FakeOutboundCall;
  /** A new PBX INVITE; the call logic runs until it waits on something the test controls. */
  call(init?: Parameters<FakeEngine['incoming']>[0]): Promise<FakeInboundCall>;
  /** The exactly-once and no-leak invariants every test ends with. */
  assertClean(): void;
}

/** `logger`: where the call logic's lines go (silent unless a test reads them). */
export function harness(
  env: Record<string, string> = {},
  rules: RuleSet = SHIPPED_RULES,
  logger: Logger = pino({ level: 'silent' }),
): Harness {
  const config = loadConfig({
    env: {
      LOG_LEVEL: 'silent',
      SIP_PUBLIC_ADDRESS: '127.0.0.1',
      PBX_ALLOWED_SOURCES: '127.0.0.0/8,10.20.0.0/16',
      ...env,
    },
  });
  const engine = new FakeEngine();
  const creates: Harness['creates'] = [];
  const ends: Harness['ends'] = [];
  const summaries: CallSummary[] = [];
  const sessionEnder = new SessionEnder({ endSession: async (id, reason) => void ends.push({ id, reason }) }, logger);
  const admission = new Admission({
    allowedSources: config.calls.allowedSources,
    maxConcurrent: config.calls.maxConcurrent,
    maxCallsPerSecond: config.calls.maxCallsPerSecond,
  });
  const manager = new CallManager({
    config,
    logger,
    engine,
    sessionEnder,
    admission,
    rules: () => rules,
    onSummary: (s) => summaries.push(s),
    kallglot: {
      createSession: (input) => {
        const reply = deferred<KallglotSession>();
        creates.push({ input, reply });
        return reply.promise;
      },
    },
  });
  return {
    engine,
    manager,
    admission,
    config,
    creates,
    ends,
    summaries,
    async createOk(id, n = creates.length - 1) {
      const c = creates[n];
      if (!c) throw new Error(`no createSession #${n}`);
      c.reply.resolve({ id, status: 'active', mode: c.input.mode, raw: {} });
      await settle();
    },
    async createFails(err, n = creates.length - 1) {
      const c = creates[n];
      if (!c) throw new Error(`no createSession #${n}`);
      c.reply.reject(err);
      await settle();
    },
    invite(n) {
      const out = engine.invites[n];
      if (!out) throw new Error(`no outbound INVITE #${n} (have ${engine.invites.length})`);
      return out;
    },
    async call(init) {
      const c = engine.incoming({ body: PBX_SDP, ...init });
      await settle();
      return c;
    },
    assertClean() {
      const perSession = new Map<string, number>();
      for (const e of ends) perSession.set(e.id, (perSession.get(e.id) ?? 0) + 1);
      for (const [id, n] of perSession) expect(n, `endSession calls for ${id}`).toBe(1);
      expect(manager.activeCalls).toBe(0);
      expect(admission.activeCalls).toBe(0);
    },
  };
}
