import { afterEach, describe, expect, it } from 'vitest';
import { endReasonForHangup } from '../../src/telnyx/events.ts';
import { callEvent, clientState, parseXml, startHarness, waitFor } from './harness.ts';
import type { Harness } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** A translated TeXML call in progress: returns its CallSid and Kallglot session id. */
async function texmlCall(hh: Harness, sid: string): Promise<string> {
  const res = await hh.webhook('/webhooks/telnyx/voice', { CallSid: sid, From: '+4930111', To: '+4940222' });
  expect(res.status).toBe(200);
  await res.text();
  const sessionId = hh.registry.get(sid)?.session_id;
  expect(sessionId).toMatch(/^sess_/);
  return sessionId!;
}

const endCalls = (hh: Harness, sessionId: string): number =>
  hh.sandbox.sessions().find((s) => s.id === sessionId)!.endCalls;
const sandboxSession = (hh: Harness, sessionId: string) => hh.sandbox.sessions().find((s) => s.id === sessionId)!;

async function post(
  hh: Harness,
  body: object | Record<string, string> | string,
  path = '/webhooks/telnyx/status',
): Promise<Record<string, unknown>> {
  const res = await hh.webhook(path, body);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe('POST /webhooks/telnyx/status', () => {
  it("call.hangup ends the call's session exactly once under duplicate deliveries", async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c1');
    const hangup = callEvent(
      'call.hangup',
      { call_control_id: 'v3:c1', call_session_id: 'cs-1', hangup_cause: 'normal_clearing', hangup_source: 'caller' },
      'ev-hangup-1',
    );
    expect(await post(hh, hangup)).toEqual({ handled: 'call.hangup', callId: 'v3:c1' });
    expect(await post(hh, hangup)).toEqual({ handled: 'call.hangup', callId: 'v3:c1', duplicate: true });
    expect(await post(hh, hangup)).toMatchObject({ duplicate: true });
    await waitFor(() => hh.registry.get('v3:c1')!.session_end_status === 'ended', 'session end confirmed');
    expect(endCalls(hh, sessionId)).toBe(1);
    expect(sandboxSession(hh, sessionId).endReason).toBe('completed');
    expect(hh.registry.get('v3:c1')).toMatchObject({ state: 'ended', end_reason: 'normal_clearing' });
    expect(hh.registry.events('v3:c1').filter((e) => e.type === 'call.hangup')).toHaveLength(1);
  });

  it('is harmless out of order: hangup before answered and streaming events', async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c2');
    await post(hh, callEvent('call.hangup', { call_control_id: 'v3:c2', hangup_cause: 'normal_clearing' }, 'ev-2-h'));
    await post(hh, callEvent('streaming.stopped', { call_control_id: 'v3:c2', stream_id: 'st-1' }, 'ev-2-ss'));
    await post(hh, callEvent('call.answered', { call_control_id: 'v3:c2' }, 'ev-2-a'));
    await post(hh, callEvent('streaming.started', { call_control_id: 'v3:c2', stream_id: 'st-1' }, 'ev-2-st'));
    await post(hh, callEvent('call.hangup', { call_control_id: 'v3:c2', hangup_cause: 'normal_clearing' }, 'ev-2-h'));
    await waitFor(() => hh.registry.get('v3:c2')!.session_end_status === 'ended', 'session end confirmed');
    expect(endCalls(hh, sessionId)).toBe(1);
    expect(hh.registry.get('v3:c2')!.state).toBe('ended');
    expect(hh.registry.events('v3:c2').map((e) => e.type)).toEqual([
      'call.hangup',
      'streaming.stopped',
      'call.answered',
      'streaming.started',
    ]);
    expect(hh.registry.events('v3:c2')[1]!.data).toMatchObject({ stream_id: 'st-1' });
  });

  it('finds the session through client_state, and a TeXML status callback for the same call does not end it again', async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c3');
    // A Call Control event on a different leg id, correlated only by our client_state.
    await post(
      hh,
      callEvent(
        'call.hangup',
        {
          call_control_id: 'v3:other-leg',
          client_state: clientState({ session_id: sessionId }),
          hangup_cause: 'user_busy',
        },
        'ev-3',
      ),
    );
    await post(hh, { CallSid: 'v3:c3', CallStatus: 'completed', HangupCause: 'normal_clearing', AccountSid: 'a' });
    await waitFor(() => hh.registry.get('v3:c3')!.session_end_status === 'ended', 'session end confirmed');
    expect(endCalls(hh, sessionId)).toBe(1);
    expect(sandboxSession(hh, sessionId).endReason).toBe('completed');
    expect(hh.registry.get('v3:c3')).toMatchObject({ state: 'ended', end_reason: 'user_busy' });
  });

  it('a TeXML status callback (form-encoded) ends the session; redelivery is ignored', async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c4');
    expect(await post(hh, { CallSid: 'v3:c4', CallStatus: 'in-progress', Timestamp: '2024-01-15T10:30:00Z' })).toEqual({
      handled: 'texml.in-progress',
      callId: 'v3:c4',
    });
    expect(hh.registry.get('v3:c4')!.answer_at).toBe(Date.parse('2024-01-15T10:30:00Z'));
    await post(hh, { CallSid: 'v3:c4', CallStatus: 'no-answer' });
    expect(await post(hh, { CallSid: 'v3:c4', CallStatus: 'no-answer' })).toMatchObject({ duplicate: true });
    await waitFor(() => hh.registry.get('v3:c4')!.session_end_status === 'ended', 'session end confirmed');
    expect(endCalls(hh, sessionId)).toBe(1);
    expect(hh.registry.get('v3:c4')).toMatchObject({ state: 'ended', end_reason: 'no_answer' });
  });

  it('maps hangup_cause timeout to the Kallglot reason timeout', async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c5');
    await post(hh, callEvent('call.hangup', { call_control_id: 'v3:c5', hangup_cause: 'timeout' }));
    await waitFor(() => sandboxSession(hh, sessionId).endReason !== undefined, 'session ended');
    expect(sandboxSession(hh, sessionId).endReason).toBe('timeout');
  });

  it('replies before the Kallglot end completes (the end runs in the background)', async () => {
    const hh = (h = await startHarness());
    const sessionId = await texmlCall(hh, 'v3:c6');
    // The first end request is held unanswered (the client times it out and SessionEnder retries).
    hh.sandbox.injectFailure({ endpoint: 'end', hang: true, times: 1 });
    await post(hh, callEvent('call.hangup', { call_control_id: 'v3:c6', hangup_cause: 'normal_clearing' }));
    // Answered while the end request is still held; the end is persisted as pending.
    expect(hh.sandbox.stats().ended).toBe(0);
    expect(hh.registry.get('v3:c6')!.session_end_status).toBe('pending');
    await waitFor(() => hh.sandbox.stats().ended === 1, 'session ended');
    expect(endCalls(hh, sessionId)).toBe(1);
  });

  it('ends a session whose creation was still running when the caller hung up', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const hh = (h = await startHarness({
      wrapKallglot: (k) => ({
        createSession: async (input) => {
          const session = await k.createSession(input);
          await gate; // the session exists at Kallglot, but the gateway has not seen the answer yet
          return session;
        },
        getSession: (id) => k.getSession(id),
      }),
    }));
    const voice = hh.webhook('/webhooks/telnyx/voice', { CallSid: 'v3:c7', From: '+4930111', To: '+4940222' });
    await waitFor(() => hh.registry.get('v3:c7') !== undefined, 'call row');
    await post(hh, { CallSid: 'v3:c7', CallStatus: 'canceled' });
    expect(hh.registry.get('v3:c7')).toMatchObject({ state: 'ended', session_id: null });
    release();
    const xml = parseXml(await (await voice).text());
    expect(xml.children.map((c) => c.name)).toEqual(['Hangup']);
    const sessionId = hh.registry.get('v3:c7')!.session_id!;
    await waitFor(() => hh.sandbox.stats().ended === 1, 'session ended');
    expect(endCalls(hh, sessionId)).toBe(1);
  });

  it('acknowledges events for unknown calls and unrecognised bodies without acting', async () => {
    const hh = (h = await startHarness());
    expect(await post(hh, callEvent('call.initiated', { call_control_id: 'v3:unknown' }))).toEqual({
      handled: 'call.initiated',
      callId: 'v3:unknown',
    });
    expect(await post(hh, callEvent('call.hangup', { hangup_cause: 'normal_clearing' }))).toMatchObject({
      ignored: 'no_call_control_id',
    });
    expect(await post(hh, '{"hello":"world"}')).toMatchObject({ ignored: 'unrecognised_body' });
    expect(hh.sandbox.stats().endRequests).toBe(0);
  });
});

describe('endReasonForHangup', () => {
  it('maps causes to Kallglot end reasons', () => {
    expect(endReasonForHangup('normal_clearing')).toBe('completed');
    expect(endReasonForHangup('user_busy')).toBe('completed');
    expect(endReasonForHangup('call_rejected')).toBe('completed');
    expect(endReasonForHangup('originator_cancel')).toBe('completed');
    expect(endReasonForHangup('timeout')).toBe('timeout');
    expect(endReasonForHangup('time_limit')).toBe('timeout');
    expect(endReasonForHangup('unspecified')).toBe('completed');
    expect(endReasonForHangup(undefined)).toBe('completed');
  });
});

describe('POST /webhooks/telnyx/recording', () => {
  it('stores a TeXML recording URL and status against the call, once', async () => {
    const hh = (h = await startHarness());
    await texmlCall(hh, 'v3:r1');
    const body = {
      CallSid: 'v3:r1',
      RecordingSid: 'rec-1',
      RecordingStatus: 'completed',
      RecordingUrl: 'https://rec.example/r1.mp3',
    };
    expect(await post(hh, body, '/webhooks/telnyx/recording')).toEqual({
      callId: 'v3:r1',
      status: 'completed',
      duplicate: false,
    });
    expect(await post(hh, body, '/webhooks/telnyx/recording')).toMatchObject({ duplicate: true });
    expect(hh.registry.get('v3:r1')).toMatchObject({
      recording_url: 'https://rec.example/r1.mp3',
      recording_status: 'completed',
    });
  });

  it('stores call.recording.saved URLs (Call Control)', async () => {
    const hh = (h = await startHarness());
    await texmlCall(hh, 'v3:r2');
    await post(
      hh,
      callEvent('call.recording.saved', {
        call_control_id: 'v3:r2',
        recording_urls: { mp3: 'https://rec.example/r2.mp3', wav: 'https://rec.example/r2.wav' },
      }),
      '/webhooks/telnyx/recording',
    );
    expect(hh.registry.get('v3:r2')).toMatchObject({
      recording_url: 'https://rec.example/r2.mp3',
      recording_status: 'completed',
    });
  });

  it('answers 400 to a recording callback without CallSid', async () => {
    const hh = (h = await startHarness());
    const res = await hh.webhook('/webhooks/telnyx/recording', { RecordingStatus: 'completed' });
    expect(res.status).toBe(400);
  });
});
