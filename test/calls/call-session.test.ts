/**
 * Call setup logic (CallManager → CallSession) over the fake engine: the happy path, CANCEL at each await, the
 * fallback rules, early media and bypass. Every race is driven step by step; each test ends with the exactly-once
 * invariants (one endSession per session, no active call, admission released).
 */
import { describe, expect, it } from 'vitest';
import { KallglotError } from '../../src/kallglot/errors.ts';
import { harness, PBX_SDP, TELNYX_SDP, type Harness } from './call-harness.ts';
import { settle, type FakeInboundCall } from './fake-engine.ts';

const EARLY_SDP = Buffer.from('v=0\r\no=telnyx 9 9 IN IP4 192.0.2.9\r\nm=audio 31000 RTP/AVP 0\r\n');
const SDP = 'application/sdp';

function names(headers: ReadonlyArray<readonly [string, string]> | undefined): string[] {
  return (headers ?? []).map(([n]) => n.toLowerCase());
}

/** Answer outbound INVITE #n, ACK the PBX's 200, then let `side` hang up; returns both dialogs. */
async function answerAndHangUp(h: Harness, pbx: FakeInboundCall, n: number, side: 'pbx' | 'telnyx') {
  const tel = h.invite(n).answer({ body: TELNYX_SDP, contentType: SDP });
  await settle();
  expect(pbx.answered?.body).toEqual(TELNYX_SDP);
  const pbxDlg = pbx.ack();
  await settle();
  (side === 'pbx' ? pbxDlg : tel).remoteBye();
  await settle();
  return { tel, pbxDlg };
}

describe('CallSession: translated call', () => {
  it('creates the session, sends the translated INVITE, bridges the SDP and ends on the PBX BYE', async () => {
    const h = harness();
    const pbx = await h.call({
      callId: 'abc-123@pbx',
      called: '+33123456',
      calling: '+4989555',
      displayName: 'Alice',
      source: { address: '10.20.1.5' },
      headers: [
        ['Via', 'SIP/2.0/UDP 10.20.1.5:5060;branch=z9hG4bKx'],
        ['From', '"Alice" <sip:+4989555@pbx>;tag=1'],
        ['To', '<sip:+33123456@gw>'],
        ['Call-ID', 'abc-123@pbx'],
        ['CSeq', '1 INVITE'],
        ['Contact', '<sip:pbx@10.20.1.5>'],
        ['Max-Forwards', '12'],
        ['X-Ticket', '42'],
        ['P-Asserted-Identity', '<sip:+4989555@pbx>'],
        ['X-Kallglot-Session-Id', 'spoofed'],
      ],
    });
    expect(h.creates).toHaveLength(1);
    expect(h.creates[0]!.input).toEqual({
      mode: 'assistive_translation',
      sourceLanguage: 'fr',
      targetLanguage: 'de',
      // The other party: the direct route, DIRECT_URI_TEMPLATE's default filled with the called number.
      requestStyle: 'routing',
      sipUri: 'sip:+33123456@sip.telnyx.com',
      routing: { type: 'sip' },
      recording: { enabled: true, channels: 'dual' },
      metadata: {
        site: 'lyon',
        cost_center: '4711',
        sip_call_id: 'abc-123@pbx',
        from: '+4989555',
        to: '+33123456',
        pbx_source: '10.20.1.5',
        rule: 'lyon-branch',
      },
      idempotencyKey: 'sip-abc-123@pbx',
    });
    expect(h.engine.invites).toHaveLength(0);

    await h.createOk('ses_1');
    const out = h.invite(0);
    expect(out.opts).toMatchObject({
      uri: 'sip:ses_1@sip.telnyx.com',
      body: PBX_SDP,
      contentType: SDP,
      timeoutMs: 60_000,
      maxForwards: 11, // the caller's value minus one: a routing loop through the gateway still ends
      from: { uri: 'sip:+4989555@sip.telnyx.com', displayName: 'Alice' },
    });
    expect(out.opts.proxy).toBeUndefined();
    expect(out.opts.auth).toBeUndefined();
    expect(out.opts.headers).toEqual([
      ['X-Ticket', '42'],
      ['P-Asserted-Identity', '<sip:+4989555@pbx>'],
      ['X-Kallglot-Session-Id', 'ses_1'],
    ]);
    for (const n of ['via', 'contact', 'call-id', 'from', 'to', 'cseq'])
      expect(names(out.opts.headers)).not.toContain(n);

    const tel = out.answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    // The PBX learns the session id of a translated call in the 200 (its CDRs can link to the transcript).
    expect(pbx.answered).toEqual({
      status: 200,
      body: TELNYX_SDP,
      contentType: SDP,
      headers: [['X-Kallglot-Session-Id', 'ses_1']],
    });
    const pbxDlg = pbx.ack();
    await settle();
    expect(h.ends).toEqual([]);

    pbxDlg.remoteBye([
      ['Reason', 'Q.850;cause=16'],
      ['Via', 'x'],
    ]);
    await settle();
    expect(tel.byes).toEqual([{ headers: [['Reason', 'Q.850;cause=16']] }]);
    expect(pbxDlg.byes).toHaveLength(0);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    expect(h.summaries).toMatchObject([
      { route: 'translated', sessionId: 'ses_1', endReason: 'bye_from_pbx', rule: 'lyon-branch' },
    ]);
    h.assertClean();
  });

  it('ends on the Telnyx BYE with customer_hangup; uses the configured proxy and credentials', async () => {
    const h = harness({
      TELNYX_OUTBOUND_PROXY: '192.0.2.1:5080',
      TELNYX_SIP_USERNAME: 'gw',
      TELNYX_SIP_PASSWORD: 'pw',
    });
    const pbx = await h.call();
    expect(h.creates[0]!.input).toMatchObject({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
    });
    await h.createOk('ses_2');
    expect(h.invite(0).opts).toMatchObject({ proxy: '192.0.2.1:5080', auth: { username: 'gw', password: 'pw' } });
    const { tel, pbxDlg } = await answerAndHangUp(h, pbx, 0, 'telnyx');
    expect(pbxDlg.byes).toHaveLength(1);
    expect(tel.byes).toHaveLength(0);
    expect(h.ends).toEqual([{ id: 'ses_2', reason: 'customer_hangup' }]);
    h.assertClean();
  });
});

describe('CallSession: CANCEL', () => {
  it('while createSession is pending: no INVITE ever, the late session is ended once', async () => {
    const h = harness();
    const pbx = await h.call();
    pbx.cancel();
    await settle();
    expect(pbx.finalResponse?.status).toBe(487);
    expect(h.manager.activeCalls).toBe(0);
    await h.createOk('ses_late');
    expect(h.engine.invites).toHaveLength(0);
    expect(h.ends).toEqual([{ id: 'ses_late', reason: 'agent_hangup' }]);
    h.assertClean();
  });

  it('while the translated leg rings: the leg is cancelled, the session ended once, no fallback', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).ring(180);
    pbx.cancel();
    await settle();
    expect(h.invite(0).cancelCalls).toHaveLength(1);
    expect(h.engine.invites).toHaveLength(1);
    expect(pbx.finalResponse?.status).toBe(487);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    h.assertClean();
  });

  it('crossing the Telnyx 200: the Telnyx dialog is BYEd, the PBX is not answered', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).ring(180);
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    pbx.cancel(); // before the call logic has seen the 200
    await settle();
    expect(tel.byes).toHaveLength(1);
    expect(tel.byes[0]!.headers[0]?.[1]).toContain('cause=487');
    expect(pbx.answerCalls).toBe(0);
    expect(pbx.finalResponse?.status).toBe(487);
    expect(h.engine.invites).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    h.assertClean();
  });
});

describe('CallSession: fallback rules', () => {
  it('Kallglot failure → direct INVITE, no session', async () => {
    const h = harness();
    const pbx = await h.call({ called: '+4930123456' });
    await h.createFails(new KallglotError('boom', { status: 500, code: 'internal_error' }));
    const out = h.invite(0);
    expect(out.opts.uri).toBe('sip:+4930123456@sip.telnyx.com');
    expect(out.header('X-Kallglot-Session-Id')).toBeUndefined();
    expect(out.opts.timeoutMs).toBeUndefined();
    await answerAndHangUp(h, pbx, 0, 'pbx');
    expect(h.ends).toEqual([]);
    expect(h.summaries).toMatchObject([{ route: 'fallback', fallbackReason: 'kallglot_internal_error' }]);
    h.assertClean();
  });

  it.each([503, 408, 404])('translated leg %i → session ended with error, direct INVITE', async (status) => {
    const h = harness();
    const pbx = await h.call({ called: '+4930123456' });
    await h.createOk('ses_1');
    h.invite(0).fail(status);
    await settle();
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'error' }]);
    expect(h.engine.invites).toHaveLength(2);
    expect(h.invite(1).opts.uri).toBe('sip:+4930123456@sip.telnyx.com');
    expect(h.invite(1).header('X-Kallglot-Session-Id')).toBeUndefined();
    await answerAndHangUp(h, pbx, 1, 'telnyx');
    expect(h.ends).toHaveLength(1);
    expect(h.summaries).toMatchObject([{ route: 'fallback', fallbackReason: `translated_leg_${status}` }]);
    h.assertClean();
  });

  it.each([486, 600, 603])('translated leg %i → PBX rejected with it, no direct INVITE', async (status) => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).fail(status, 'Callee says no');
    await settle();
    expect(pbx.finalResponse).toMatchObject({ status, reason: 'Callee says no' });
    expect(h.engine.invites).toHaveLength(1);
    expect(h.ends).toHaveLength(1);
    expect(h.ends[0]!.id).toBe('ses_1');
    h.assertClean();
  });

  it('rate limited with RATE_LIMIT_POLICY=busy → 486, no INVITE', async () => {
    const h = harness({ RATE_LIMIT_POLICY: 'busy' });
    const pbx = await h.call();
    await h.createFails(
      new KallglotError('slow down', { status: 429, code: 'rate_limit_exceeded', retryAfterMs: 2500 }),
    );
    expect(pbx.finalResponse).toEqual({ status: 486, reason: 'Busy Here', headers: [] });
    expect(h.engine.invites).toHaveLength(0);
    h.assertClean();
  });

  it('rate limited with RATE_LIMIT_BUSY_STATUS=503 → 503 with Retry-After', async () => {
    const h = harness({ RATE_LIMIT_POLICY: 'busy', RATE_LIMIT_BUSY_STATUS: '503' });
    const pbx = await h.call();
    await h.createFails(
      new KallglotError('slow down', { status: 429, code: 'rate_limit_exceeded', retryAfterMs: 2500 }),
    );
    expect(pbx.finalResponse).toEqual({ status: 503, reason: 'Service Unavailable', headers: [['Retry-After', '3']] });
    expect(h.engine.invites).toHaveLength(0);
    h.assertClean();
  });

  it('direct leg 407 → PBX gets 503', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createFails(new KallglotError('down', { status: 503, code: 'service_unavailable' }));
    h.invite(0).fail(407, 'Proxy Authentication Required');
    await settle();
    expect(pbx.finalResponse).toMatchObject({ status: 503, reason: 'Service Unavailable' });
    expect(h.engine.invites).toHaveLength(1);
    h.assertClean();
  });
});

describe('CallSession: early media', () => {
  it('translated leg 18x → one plain 180; on the direct route 183 with SDP is relayed as is', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).ring(183, { body: EARLY_SDP, contentType: SDP });
    h.invite(0).ring(180);
    h.invite(0).ring(183, { body: EARLY_SDP, contentType: SDP });
    await settle();
    expect(pbx.provisionals).toEqual([{ status: 180, reason: 'Ringing' }]);

    h.invite(0).fail(503);
    await settle();
    h.invite(1).ring(183, { body: EARLY_SDP, contentType: SDP });
    await settle();
    expect(pbx.provisionals).toHaveLength(2);
    expect(pbx.provisionals[1]).toEqual({ status: 183, reason: 'Session Progress', body: EARLY_SDP, contentType: SDP });
    await answerAndHangUp(h, pbx, 1, 'pbx');
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'error' }]);
    h.assertClean();
  });
});

describe('CallSession: bypass', () => {
  it('emergency number: no Kallglot at all, direct INVITE, early media relayed', async () => {
    const h = harness();
    const pbx = await h.call({ called: '112' });
    expect(h.creates).toHaveLength(0);
    const out = h.invite(0);
    expect(out.opts.uri).toBe('sip:112@sip.telnyx.com');
    expect(out.header('X-Kallglot-Session-Id')).toBeUndefined();
    out.ring(183, { body: EARLY_SDP, contentType: SDP });
    await settle();
    expect(pbx.provisionals).toEqual([{ status: 183, reason: 'Session Progress', body: EARLY_SDP, contentType: SDP }]);
    const { tel } = await answerAndHangUp(h, pbx, 0, 'pbx');
    expect(tel.byes).toHaveLength(1);
    expect(h.creates).toHaveLength(0);
    expect(h.ends).toEqual([]);
    expect(h.summaries).toMatchObject([{ route: 'bypass', rule: 'emergency-bypass' }]);
    h.assertClean();
  });
});
