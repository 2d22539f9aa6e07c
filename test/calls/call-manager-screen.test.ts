/**
 * The stateless admission screen (SipEngine.screenInvites): the CallManager refuses overload there, before the
 * engine keeps anything for the INVITE, with the same metrics, summary and aggregated log as a stateful refusal. Every
 * other refusal (draining, an unknown source) is left to handle(), which answers it through the InboundCall; an
 * engine without a screen (drachtio) gets the overload refusal through handle() too.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/calls/admission.ts';
import { CallManager } from '../../src/calls/call-manager.ts';
import type { CallSummary } from '../../src/calls/types.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { InviteScreen } from '../../src/sip/port.ts';
import { SHIPPED_RULES } from './call-harness.ts';
import { FakeEngine } from './fake-engine.ts';

class ScreeningEngine extends FakeEngine {
  screen: InviteScreen | undefined;
  screenInvites(screen: InviteScreen): void {
    this.screen = screen;
  }
}

const PBX = { transport: 'udp', address: '127.0.0.1', port: 5070 } as const;

function setup(engine: FakeEngine) {
  let lagMs = 0;
  const lines: Array<{ level: number; msg: string; refused?: Record<string, number> }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const config = loadConfig({ env: { LOG_LEVEL: 'silent', SIP_PUBLIC_ADDRESS: '127.0.0.1' } });
  const admission = new Admission({
    allowedSources: ['127.0.0.0/8'],
    maxConcurrent: 0,
    maxCallsPerSecond: 0,
    overload: { maxLagMs: 50, lagMs: () => lagMs, maxUtilization: 0, utilization: () => 0, maxInflightSetups: 0 },
  });
  const rejected: string[] = [];
  const summaries: CallSummary[] = [];
  const rows: string[] = [];
  new CallManager({
    config,
    logger,
    engine,
    admission,
    rules: () => SHIPPED_RULES,
    sessionEnder: { end: () => undefined } as never,
    kallglot: { createSession: () => new Promise(() => undefined) },
    recorder: {
      callStarted: (row: { callId: string }) => void rows.push(row.callId),
      update: () => undefined,
      callEnded: () => undefined,
    } as never,
    onAdmissionRejected: (why) => void rejected.push(why),
    onSummary: (s) => void summaries.push(s),
  });
  return { admission, lines, rejected, summaries, rows, setLag: (ms: number) => void (lagMs = ms) };
}

describe('CallManager: the stateless overload screen', () => {
  it('refuses overload with 503 + Retry-After 1, counted, summarised and logged once, with no registry row', () => {
    const engine = new ScreeningEngine();
    const t = setup(engine);
    const screen = engine.screen;
    if (!screen) throw new Error('the CallManager registered no screen');
    expect(screen({ callId: 'calm@pbx', source: PBX })).toBeUndefined();

    t.setLag(80);
    for (let i = 1; i <= 3; i++) {
      expect(screen({ callId: `busy-${i}@pbx`, source: PBX })).toEqual({
        status: 503,
        reason: 'Service Unavailable (overloaded)',
        headers: [['Retry-After', '1']],
      });
    }
    expect(t.rejected).toEqual(['event_loop_lag', 'event_loop_lag', 'event_loop_lag']);
    expect(t.summaries.map((s) => [s.callId, s.route, s.endReason, s.sipStatus])).toEqual([
      ['busy-1@pbx', 'rejected', 'event_loop_lag', 503],
      ['busy-2@pbx', 'rejected', 'event_loop_lag', 503],
      ['busy-3@pbx', 'rejected', 'event_loop_lag', 503],
    ]);
    const warnings = t.lines.filter((l) => l.msg.startsWith('overloaded: refusing new calls'));
    expect(warnings).toHaveLength(1); // aggregated (RefusalLog), not one line per INVITE
    expect(t.lines.filter((l) => l.msg === 'INVITE refused at admission')).toEqual([]);
    expect(t.rows).toEqual([]);
    expect(t.admission.activeCalls).toBe(0);
  });

  it('leaves draining and unknown sources to handle(), which answers them through the call', () => {
    const engine = new ScreeningEngine();
    const t = setup(engine);
    t.setLag(80);
    const stranger = { ...PBX, address: '192.0.2.66' };
    expect(engine.screen?.({ callId: 'x@stranger', source: stranger })).toBeUndefined();
    expect(engine.incoming({ source: stranger }).finalResponse?.status).toBe(403);
    t.admission.startDraining();
    expect(engine.screen?.({ callId: 'y@pbx', source: PBX })).toBeUndefined();
    const drained = engine.incoming();
    expect(drained.finalResponse).toMatchObject({ status: 503, reason: 'Service Unavailable (draining)' });
    expect(t.rejected).toEqual(['source_not_allowed', 'draining']);
  });

  it('without a screen in the engine, handle() refuses overload the stateful way, with the same bookkeeping', () => {
    const engine = new FakeEngine();
    const t = setup(engine);
    t.setLag(80);
    const call = engine.incoming({ callId: 'busy@pbx' });
    expect(call.finalResponse).toMatchObject({
      status: 503,
      reason: 'Service Unavailable (overloaded)',
      headers: [['Retry-After', '1']],
    });
    expect(t.rejected).toEqual(['event_loop_lag']);
    expect(t.summaries.map((s) => [s.callId, s.route, s.endReason])).toEqual([
      ['busy@pbx', 'rejected', 'event_loop_lag'],
    ]);
    expect(t.rows).toEqual([]);
  });
});
