import { afterEach, describe, expect, it } from 'vitest';
import { callEvent, waitFor } from './harness.ts';
import {
  type InboundTest,
  CC_PATH,
  DIRECT,
  FROM,
  TO,
  adminCalls,
  answeredState,
  decodeState,
  initiate,
  initiatedEvent,
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

const wsUrl = (t: InboundTest, sessionId: string): string =>
  `${t.hh.sandbox.url.replace(/^http/, 'ws')}/sessions/${sessionId}/connect`;

describe('POST /webhooks/telnyx/call-control (inbound Call Control)', () => {
  it('happy path: session for `to`, answer with client_state, then the both-track stream on call.answered', async () => {
    const tt = await start();
    const { hh, fk } = tt;
    expect(await initiate(tt, 'v3:in-1')).toEqual({ handled: 'call.initiated', callId: 'v3:in-1' });

    const [s] = hh.sandbox.sessions();
    expect(hh.sandbox.sessions()).toHaveLength(1);
    expect(s).toMatchObject({ mode: 'bidirectional_translation', sourceLanguage: 'de', targetLanguage: 'en' });
    expect(s!.routing).toMatchObject({ phone_number: TO });
    expect(s!.metadata).toMatchObject({ call_control_id: 'v3:in-1', from: FROM, to: TO, rule: 'default' });
    expect(s!.idempotencyKey).toBe('call-control-v3:in-1');

    // Answered with the session tied on through client_state; the stream follows on call.answered (inbound.ts: why).
    expect(fk.actionNames()).toEqual(['answer']);
    const answer = fk.actions('answer', 'v3:in-1')[0]!;
    expect(answer.headers.authorization).toBe('Bearer KEY_test_telnyx');
    expect(decodeState(answer.body.client_state)).toEqual({
      session_id: s!.id,
      call_id: 'v3:in-1',
      stream: 'answer',
      direction: 'inbound',
    });
    expect(hh.registry.get('v3:in-1')).toMatchObject({
      kind: 'call_control',
      route: 'translated',
      session_id: s!.id,
      state: 'active',
      from_user: FROM,
      to_user: TO,
      rule: 'default',
    });

    const cs = answeredState(tt, 'v3:in-1');
    await post(hh, callEvent('call.answered', { call_control_id: 'v3:in-1', client_state: cs }, 'ev-ans-1'));
    await post(hh, callEvent('call.answered', { call_control_id: 'v3:in-1', client_state: cs }, 'ev-ans-1'));
    await hh.routes.inbound.idle();
    const starts = fk.actions('streaming_start', 'v3:in-1');
    expect(starts).toHaveLength(1);
    expect(starts[0]!.body).toEqual({
      stream_url: wsUrl(tt, s!.id),
      stream_track: 'both_tracks',
      stream_auth_token: expect.stringMatching(/^kst_/),
      custom_parameters: [
        { name: 'token', value: starts[0]!.body.stream_auth_token },
        { name: 'session_id', value: s!.id },
      ],
      command_id: `stream-${s!.id}`,
    });
    expect(hh.sandbox.stats().getRequests).toBe(0); // the stream details were kept from the create
    expect(fk.actions('record_start')).toHaveLength(0); // the default rule does not record
    expect(hh.registry.get('v3:in-1')!.answer_at).not.toBeNull();
  });

  it('replies 200 before the session exists: the Kallglot and Telnyx requests run after the reply', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tt = await start(
      {},
      {
        wrapKallglot: (k) => ({
          createSession: async (input) => {
            await gate;
            return k.createSession(input);
          },
          getSession: (id) => k.getSession(id),
        }),
      },
    );
    const reply = await post(tt.hh, initiatedEvent('v3:in-fast', 'ev-fast'));
    expect(reply).toEqual({ handled: 'call.initiated', callId: 'v3:in-fast' });
    expect(tt.fk.requests).toHaveLength(0);
    expect(tt.hh.registry.get('v3:in-fast')).toMatchObject({ state: 'active', session_id: null });
    release();
    await tt.hh.routes.inbound.idle();
    expect(tt.fk.actionNames()).toEqual(['answer']);
  });

  it('a duplicate call.initiated creates one session and sends one answer', async () => {
    const tt = await start();
    const first = initiatedEvent('v3:in-dup', 'ev-dup');
    // Redelivered while the first is being handled, once more afterwards, and re-sent under another event id.
    const replies = await Promise.all([post(tt.hh, first), post(tt.hh, first)]);
    expect(replies.filter((r) => r.duplicate === true)).toHaveLength(1);
    await tt.hh.routes.inbound.idle();
    expect(await post(tt.hh, first)).toMatchObject({ duplicate: true });
    expect(await post(tt.hh, initiatedEvent('v3:in-dup', 'ev-dup-other'))).toMatchObject({ duplicate: true });
    await tt.hh.routes.inbound.idle();
    expect(tt.hh.sandbox.stats().createRequests).toBe(1);
    expect(tt.fk.actions('answer')).toHaveLength(1);
    expect(tt.hh.registry.events('v3:in-dup').filter((e) => e.type === 'call.initiated')).toHaveLength(2);
  });

  it('call.hangup ends the session exactly once, with the cause mapped as on the outbound path', async () => {
    const tt = await start();
    await initiate(tt, 'v3:in-h');
    const sessionId = tt.hh.registry.get('v3:in-h')!.session_id!;
    const cs = answeredState(tt, 'v3:in-h');
    const hangup = callEvent(
      'call.hangup',
      { call_control_id: 'v3:in-h', client_state: cs, hangup_cause: 'normal_clearing', hangup_source: 'caller' },
      'ev-h',
    );
    expect(await post(tt.hh, hangup)).toEqual({ handled: 'call.hangup', callId: 'v3:in-h' });
    expect(await post(tt.hh, hangup)).toMatchObject({ duplicate: true });
    // The same hangup under another event id (a second webhook of the call) finds the end already requested.
    await post(tt.hh, callEvent('call.hangup', { call_control_id: 'v3:in-h', hangup_cause: 'normal_clearing' }));
    await waitFor(() => tt.hh.registry.get('v3:in-h')!.session_end_status === 'ended', 'session end confirmed');
    const s = tt.hh.sandbox.sessions().find((x) => x.id === sessionId)!;
    expect(s).toMatchObject({ endCalls: 1, endReason: 'completed' });
    expect(tt.hh.registry.get('v3:in-h')).toMatchObject({ state: 'ended', end_reason: 'normal_clearing' });

    // The registry row shows the call like the others on GET /calls.
    const row = (await adminCalls(tt.hh)).find((c) => c.call_id === 'v3:in-h');
    expect(row).toMatchObject({
      kind: 'call_control',
      route: 'translated',
      session_id: sessionId,
      end_reason: 'normal_clearing',
      session_end_status: 'ended',
    });
  });

  it('maps hangup_cause timeout to the Kallglot reason timeout', async () => {
    const tt = await start();
    await initiate(tt, 'v3:in-to');
    const cs = answeredState(tt, 'v3:in-to');
    await post(
      tt.hh,
      callEvent('call.hangup', { call_control_id: 'v3:in-to', client_state: cs, hangup_cause: 'timeout' }),
    );
    await waitFor(() => tt.hh.sandbox.stats().ended === 1, 'session ended');
    expect(tt.hh.sandbox.sessions()[0]).toMatchObject({ endReason: 'timeout', endCalls: 1 });
  });

  it('a hangup delivered before call.initiated leaves nothing behind', async () => {
    const tt = await start();
    const hangup = callEvent('call.hangup', { call_control_id: 'v3:in-early', hangup_cause: 'originator_cancel' });
    expect(await post(tt.hh, hangup)).toEqual({ handled: 'call.hangup', callId: 'v3:in-early' });
    expect(await initiate(tt, 'v3:in-early')).toMatchObject({ ignored: 'already_hung_up' });
    expect(tt.hh.sandbox.stats().createRequests).toBe(0);
    expect(tt.fk.requests).toHaveLength(0);
    expect(tt.hh.registry.get('v3:in-early')).toMatchObject({
      state: 'ended',
      end_reason: 'originator_cancel',
      session_id: null,
    });
    expect(tt.hh.registry.active()).toEqual([]);
  });

  it('a hangup while the session is being created: the session is ended, the call is not answered', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tt = await start(
      {},
      {
        wrapKallglot: (k) => ({
          createSession: async (input) => {
            const session = await k.createSession(input);
            await gate; // created at Kallglot, not yet seen by the gateway
            return session;
          },
          getSession: (id) => k.getSession(id),
        }),
      },
    );
    await post(tt.hh, initiatedEvent('v3:in-race', 'ev-race'));
    await waitFor(() => tt.hh.sandbox.stats().created === 1, 'session created at Kallglot');
    await post(tt.hh, callEvent('call.hangup', { call_control_id: 'v3:in-race', hangup_cause: 'normal_clearing' }));
    release();
    await tt.hh.routes.inbound.idle();
    await waitFor(() => tt.hh.sandbox.stats().ended === 1, 'session ended');
    expect(tt.hh.sandbox.sessions()[0]).toMatchObject({ endCalls: 1, endReason: 'completed' });
    expect(tt.fk.requests).toHaveLength(0);
    expect(tt.hh.registry.get('v3:in-race')).toMatchObject({ state: 'ended', end_reason: 'normal_clearing' });
  });

  it('a `recording: true` rule starts a dual-channel recording once answered; the callback is stored', async () => {
    const rules = `rules:
  - name: rec
    match: { called: "+4940" }
    mode: assistive_translation
    source_language: fr
    target_language: de
    recording: true
default:
  mode: bypass
`;
    const tt = await start({}, { rules });
    await initiate(tt, 'v3:in-rec');
    const cs = answeredState(tt, 'v3:in-rec');
    expect(decodeState(cs)).toMatchObject({ record: true, direction: 'inbound' });
    expect(tt.hh.sandbox.sessions()[0]!.recording).toMatchObject({ enabled: true, channels: 'dual' });
    expect(tt.fk.actions('record_start')).toHaveLength(0); // not before the call is answered

    await post(tt.hh, callEvent('call.answered', { call_control_id: 'v3:in-rec', client_state: cs }));
    await tt.hh.routes.inbound.idle();
    expect(tt.fk.actionNames()).toEqual(['answer', 'streaming_start', 'record_start']);
    expect(tt.fk.actions('record_start')[0]!.body).toMatchObject({ channels: 'dual', command_id: 'record-v3:in-rec' });
    expect(tt.hh.registry.get('v3:in-rec')!.recording_status).toBe('requested');

    const saved = callEvent('call.recording.saved', {
      call_control_id: 'v3:in-rec',
      client_state: cs,
      recording_urls: { mp3: 'https://rec.example/in-rec.mp3' },
    });
    await post(tt.hh, saved);
    expect(tt.hh.registry.get('v3:in-rec')).toMatchObject({
      recording_status: 'completed',
      recording_url: 'https://rec.example/in-rec.mp3',
    });
  });

  it('leaves call.initiated of outgoing legs (a transfer, a dialled call) to the event store', async () => {
    const tt = await start();
    const reply = await post(
      tt.hh,
      initiatedEvent('v3:leg-b', 'ev-leg-b', { direction: 'outgoing', from: TO, to: DIRECT }),
    );
    expect(reply).toEqual({ handled: 'call.initiated', callId: 'v3:leg-b' });
    await tt.hh.routes.inbound.idle();
    expect(tt.hh.sandbox.stats().createRequests).toBe(0);
    expect(tt.fk.requests).toHaveLength(0);
    expect(tt.hh.registry.get('v3:leg-b')).toBeUndefined();
  });
});

describe('the Call Control path is signed', () => {
  it('refuses an unsigned call.initiated before acting on it', async () => {
    const tt = await start();
    const body = JSON.stringify(initiatedEvent('v3:in-unsigned', 'ev-unsigned'));
    const res = await fetch(`${tt.hh.url}${CC_PATH}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    expect(res.status).toBe(401);
    await tt.hh.routes.inbound.idle();
    expect(tt.hh.sandbox.stats().createRequests).toBe(0);
    expect(tt.hh.registry.get('v3:in-unsigned')).toBeUndefined();
  });
});
