import { afterEach, describe, expect, it } from 'vitest';
import { callEvent, waitFor } from './harness.ts';
import {
  type InboundTest,
  DIRECT,
  answeredState,
  decodeState,
  initiate,
  post,
  setupInbound,
} from './inbound-helpers.ts';

let t: InboundTest | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function start(...args: Parameters<typeof setupInbound>): Promise<InboundTest> {
  t = await setupInbound(...args);
  return t;
}

describe('inbound Call Control failure paths (as on the TeXML path)', () => {
  it('Kallglot down: answers, then transfers to DIRECT_NUMBER', async () => {
    const tt = await start();
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    await initiate(tt, 'v3:f-down');
    expect(tt.fk.actionNames()).toEqual(['answer', 'transfer']);
    expect(tt.fk.actions('transfer')[0]!.body).toMatchObject({ to: DIRECT, command_id: 'transfer-v3:f-down' });
    // The fallback answer carries no session: nothing later on this call may end or stream one.
    expect(decodeState(tt.fk.actions('answer')[0]!.body.client_state)).toEqual({
      call_id: 'v3:f-down',
      direction: 'inbound',
    });
    expect(tt.hh.registry.get('v3:f-down')).toMatchObject({
      kind: 'call_control',
      route: 'fallback',
      fallback_reason: 'kallglot_internal_error',
      session_id: null,
      state: 'active',
    });
  });

  it('Kallglot down with TELNYX_FALLBACK_NOTICE: speaks it, and transfers once call.speak.ended arrives', async () => {
    const rules = `rules:
  - name: de
    match: { called: "+4940" }
    mode: bidirectional_translation
    source_language: de
    target_language: en
    greeting: { text: "Willkommen", language: de-DE }
default:
  mode: bypass
`;
    const notice = 'Die Übersetzung ist gerade nicht verfügbar. Wir verbinden Sie direkt.';
    const tt = await start({ TELNYX_FALLBACK_NOTICE: notice }, { rules });
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 503 });
    await initiate(tt, 'v3:f-notice');
    expect(tt.fk.actionNames()).toEqual(['answer', 'speak']);
    const speak = tt.fk.actions('speak')[0]!.body;
    expect(speak).toMatchObject({ payload: notice, voice: 'female', language: 'de-DE' });

    const ended = callEvent(
      'call.speak.ended',
      { call_control_id: 'v3:f-notice', client_state: speak.client_state, status: 'completed' },
      'ev-speak-ended',
    );
    await post(tt.hh, ended);
    await post(tt.hh, ended); // redelivered
    await tt.hh.routes.inbound.idle();
    expect(tt.fk.actionNames()).toEqual(['answer', 'speak', 'transfer']);
  });

  it('without DIRECT_NUMBER a call Kallglot cannot take is rejected, never transferred to its own number', async () => {
    const tt = await start({ DIRECT_NUMBER: '' });
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 402 });
    await initiate(tt, 'v3:f-nodirect');
    expect(tt.fk.actionNames()).toEqual(['reject']);
    expect(tt.fk.actions('reject')[0]!.body).toMatchObject({ cause: 'CALL_REJECTED' });
    expect(tt.hh.registry.get('v3:f-nodirect')).toMatchObject({ state: 'ended', end_reason: 'rejected' });
  });

  it('429 with RATE_LIMIT_POLICY=busy: rejects USER_BUSY without answering', async () => {
    const tt = await start({ RATE_LIMIT_POLICY: 'busy' });
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 429, retryAfterSec: 3 });
    await initiate(tt, 'v3:f-busy');
    expect(tt.fk.actionNames()).toEqual(['reject']);
    expect(tt.fk.actions('reject', 'v3:f-busy')[0]!.body).toEqual({
      cause: 'USER_BUSY',
      command_id: 'reject-v3:f-busy',
    });
    expect(tt.hh.registry.get('v3:f-busy')).toMatchObject({
      state: 'ended',
      end_reason: 'rejected',
      route: 'rejected',
      fallback_reason: 'kallglot_rate_limit_exceeded',
    });
  });

  it('429 with the default policy falls back: answer and transfer', async () => {
    const tt = await start();
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 429 });
    await initiate(tt, 'v3:f-429');
    expect(tt.fk.actionNames()).toEqual(['answer', 'transfer']);
    expect(tt.hh.registry.get('v3:f-429')!.route).toBe('fallback');
  });

  it('a bypass rule transfers to DIRECT_NUMBER without a session (and without answering)', async () => {
    const rules = `rules:
  - name: hotline
    match: { called: "+4940333" }
    mode: bypass
default:
  mode: bidirectional_translation
  source_language: de
  target_language: en
`;
    const tt = await start({}, { rules });
    await initiate(tt, 'v3:f-bypass');
    expect(tt.fk.actionNames()).toEqual(['transfer']);
    expect(tt.hh.sandbox.stats().createRequests).toBe(0);
    expect(tt.hh.registry.get('v3:f-bypass')).toMatchObject({ route: 'bypass', rule: 'hotline', session_id: null });
  });

  it('a failing answer ends the session (reason error) and the call falls back to DIRECT_NUMBER', async () => {
    const tt = await start();
    tt.fk.failActions.set('answer', 422);
    await initiate(tt, 'v3:f-answer');
    // The translated answer, the fallback's answer (failing too: the transfer goes ahead), the transfer.
    expect(tt.fk.actionNames()).toEqual(['answer', 'answer', 'transfer']);
    await waitFor(() => tt.hh.sandbox.stats().ended === 1, 'session ended');
    expect(tt.hh.sandbox.sessions()[0]).toMatchObject({ endReason: 'error', endCalls: 1 });
    expect(tt.hh.registry.get('v3:f-answer')).toMatchObject({
      route: 'fallback',
      fallback_reason: 'telnyx_answer_failed',
      session_id: tt.hh.sandbox.sessions()[0]!.id,
    });
    expect(tt.hh.registry.events('v3:f-answer').map((e) => e.type)).toEqual([
      'call.initiated',
      'telnyx_answer_failed',
      'answer_failed',
      'transfer_requested',
    ]);
  });

  it('a failing startStreaming ends the session (reason error) and transfers the answered call', async () => {
    const tt = await start();
    tt.fk.failActions.set('streaming_start', 422);
    await initiate(tt, 'v3:f-stream');
    const cs = answeredState(tt, 'v3:f-stream');
    await post(tt.hh, callEvent('call.answered', { call_control_id: 'v3:f-stream', client_state: cs }));
    await tt.hh.routes.inbound.idle();
    expect(tt.fk.actionNames()).toEqual(['answer', 'streaming_start', 'transfer']);
    await waitFor(() => tt.hh.sandbox.stats().ended === 1, 'session ended');
    expect(tt.hh.sandbox.sessions()[0]).toMatchObject({ endReason: 'error', endCalls: 1 });
    expect(tt.hh.registry.get('v3:f-stream')).toMatchObject({
      route: 'fallback',
      fallback_reason: 'stream_start_failed',
    });

    // The caller's later hangup does not end the session a second time.
    await post(tt.hh, callEvent('call.hangup', { call_control_id: 'v3:f-stream', client_state: cs }));
    expect(tt.hh.sandbox.sessions()[0]!.endCalls).toBe(1);
    expect(tt.hh.registry.get('v3:f-stream')!.state).toBe('ended');
  });

  it('a failing transfer hangs the call up rather than leave it in silence', async () => {
    const tt = await start();
    tt.hh.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    tt.fk.failActions.set('transfer', 422);
    await initiate(tt, 'v3:f-transfer');
    expect(tt.fk.actionNames()).toEqual(['answer', 'transfer', 'hangup']);
  });

  it('a failing recording start keeps the translated call and marks the recording failed', async () => {
    const rules =
      'default:\n  mode: bidirectional_translation\n  source_language: de\n  target_language: en\n  recording: true\n';
    const tt = await start({}, { rules });
    tt.fk.failActions.set('record_start', 422);
    await initiate(tt, 'v3:f-rec');
    const cs = answeredState(tt, 'v3:f-rec');
    await post(tt.hh, callEvent('call.answered', { call_control_id: 'v3:f-rec', client_state: cs }));
    await tt.hh.routes.inbound.idle();
    expect(tt.fk.actionNames()).toEqual(['answer', 'streaming_start', 'record_start']);
    expect(tt.hh.registry.get('v3:f-rec')).toMatchObject({ route: 'translated', recording_status: 'failed' });
    expect(tt.hh.sandbox.stats().endRequests).toBe(0);
  });
});
