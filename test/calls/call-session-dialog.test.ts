/**
 * Bridged-call logic over the fake engine: in-dialog relay (including requests that overtake the PBX's ACK), BYEs
 * racing the ACK, the max-duration and session-timer watchdogs, and gateway hang-ups (drain) during setup.
 * Each test ends with the exactly-once invariants.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SipError } from '../../src/sip/port.ts';
import { harness, TELNYX_SDP, type Harness } from './call-harness.ts';
import { settle, type FakeInboundCall, type MessageInit } from './fake-engine.ts';

const SDP = 'application/sdp';
const HOLD_SDP = Buffer.from('v=0\r\no=pbx 1 2 IN IP4 127.0.0.1\r\na=sendonly\r\n');
const HOLD_ANSWER = Buffer.from('v=0\r\no=telnyx 7 8 IN IP4 192.0.2.7\r\na=recvonly\r\n');

/** A translated call up to the Telnyx 200 (PBX answered, its ACK still pending). */
async function answeredNotAcked(
  h: Harness,
  telnyx200: MessageInit = {},
  pbxInit = {},
): Promise<{ pbx: FakeInboundCall; tel: ReturnType<ReturnType<Harness['invite']>['answer']> }> {
  const pbx = await h.call(pbxInit);
  await h.createOk('ses_1');
  const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP, ...telnyx200 });
  await settle();
  expect(pbx.answerCalls).toBe(1);
  return { pbx, tel };
}

async function bridged(h: Harness, telnyx200: MessageInit = {}, pbxInit = {}) {
  const { pbx, tel } = await answeredNotAcked(h, telnyx200, pbxInit);
  const pbxDlg = pbx.ack();
  await settle();
  return { pbx, tel, pbxDlg };
}

function reasonOf(bye: { headers: ReadonlyArray<readonly [string, string]> } | undefined): string | undefined {
  return bye?.headers.find(([n]) => n === 'Reason')?.[1];
}

afterEach(() => {
  vi.useRealTimers();
});

describe('CallSession: in-dialog relay', () => {
  it('relays a PBX re-INVITE to Telnyx with its body and returns the Telnyx answer', async () => {
    const h = harness();
    const { tel, pbxDlg } = await bridged(h);
    const req = pbxDlg.receive('INVITE', {
      body: HOLD_SDP,
      contentType: SDP,
      headers: [
        ['X-Hold', '1'],
        ['Via', 'v'],
        ['Contact', 'c'],
      ],
    });
    expect(tel.sent).toHaveLength(1);
    expect(tel.sent[0]).toMatchObject({
      method: 'INVITE',
      body: HOLD_SDP,
      contentType: SDP,
      headers: [['X-Hold', '1']],
    });
    expect(req.responses).toEqual([]);
    tel.sent[0]!.reply(200, {
      body: HOLD_ANSWER,
      contentType: SDP,
      headers: [
        ['X-Resp', 'y'],
        ['Contact', 'z'],
      ],
    });
    await settle();
    expect(req.final).toEqual({
      status: 200,
      reason: 'OK',
      body: HOLD_ANSWER,
      contentType: SDP,
      headers: [['X-Resp', 'y']],
    });

    const info = pbxDlg.receive('INFO', { body: Buffer.from('Signal=5'), contentType: 'application/dtmf-relay' });
    tel.sent[1]!.fail(new SipError(488, 'Not Acceptable Here'));
    await settle();
    expect(info.final?.status).toBe(488);

    tel.remoteBye();
    await settle();
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'customer_hangup' }]);
    h.assertClean();
  });

  it('holds a Telnyx re-INVITE that overtakes the PBX ACK and relays it once the ACK arrives', async () => {
    const h = harness();
    const { pbx, tel } = await answeredNotAcked(h);
    const req = tel.receive('INVITE', { body: HOLD_SDP, contentType: SDP });
    await settle();
    expect(req.responses).toEqual([]);
    expect(pbx.dialog!.sent).toHaveLength(0);

    const pbxDlg = pbx.ack();
    await settle();
    expect(pbxDlg.sent).toHaveLength(1);
    expect(pbxDlg.sent[0]).toMatchObject({ method: 'INVITE', body: HOLD_SDP });
    pbxDlg.sent[0]!.reply(200, { body: HOLD_ANSWER, contentType: SDP });
    await settle();
    expect(req.final).toMatchObject({ status: 200, body: HOLD_ANSWER });
    // A later Telnyx request goes straight through (the hold buffer is no longer in the way).
    const later = tel.receive('OPTIONS');
    expect(pbxDlg.sent).toHaveLength(2);
    pbxDlg.sent[1]!.reply(200);
    await settle();
    expect(later.final?.status).toBe(200);
    expect(req.responses).toHaveLength(1);

    pbxDlg.remoteBye();
    await settle();
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    h.assertClean();
  });

  it('answers a held Telnyx request 481 when the PBX never ACKs', async () => {
    const h = harness();
    const { pbx, tel } = await answeredNotAcked(h);
    const req = tel.receive('INVITE', { body: HOLD_SDP, contentType: SDP });
    pbx.ackTimeout();
    await settle();
    expect(req.final?.status).toBe(481);
    expect(tel.byes).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'error' }]);
    h.assertClean();
  });
});

describe('CallSession: BYE racing the PBX ACK', () => {
  it('Telnyx BYE before the ACK: the PBX is BYEd once the ACK arrives, session ended once', async () => {
    const h = harness();
    const { pbx, tel } = await answeredNotAcked(h);
    tel.remoteBye();
    await settle();
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'customer_hangup' }]);
    const pbxDlg = pbx.ack();
    await settle();
    expect(pbxDlg.byes).toHaveLength(1);
    expect(tel.byes).toHaveLength(0);
    expect(h.ends).toHaveLength(1);
    h.assertClean();
  });

  it('PBX BYE overtaking its own ACK: the Telnyx leg is BYEd, session ended once', async () => {
    const h = harness();
    const { pbx, tel } = await answeredNotAcked(h);
    pbx.dialog!.remoteBye(); // the engine confirms the dialog on the BYE: answer() resolves with an ended dialog
    pbx.ack();
    await settle();
    expect(tel.byes).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    h.assertClean();
  });
});

describe('CallSession: watchdogs', () => {
  it('MAX_CALL_DURATION_SEC hangs up both legs with timeout', async () => {
    vi.useFakeTimers();
    const h = harness({ MAX_CALL_DURATION_SEC: '1' });
    const { tel, pbxDlg } = await bridged(h);
    vi.advanceTimersByTime(999);
    expect(tel.byes).toHaveLength(0);
    vi.advanceTimersByTime(1);
    await settle();
    expect(pbxDlg.byes).toHaveLength(1);
    expect(tel.byes).toHaveLength(1);
    expect(reasonOf(tel.byes[0])).toContain('max_call_duration');
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'timeout' }]);
    h.assertClean();
  });

  it('session timer: passes Session-Expires both ways and hangs up when no refresh comes', async () => {
    vi.useFakeTimers();
    const h = harness();
    const pbxHeaders: Array<[string, string]> = [
      ['Call-ID', 'st@pbx'],
      ['Session-Expires', '1800'],
      ['Min-SE', '90'],
    ];
    const { pbx, tel, pbxDlg } = await bridged(
      h,
      {
        headers: [
          ['Session-Expires', '2;refresher=uac'],
          ['Require', 'timer'],
        ],
      },
      { headers: pbxHeaders },
    );
    expect(h.invite(0).opts.headers).toEqual(
      expect.arrayContaining([
        ['Session-Expires', '1800'],
        ['Supported', 'timer'],
        ['Min-SE', '90'],
      ]),
    );
    expect(pbx.answered?.headers).toEqual([
      ['Session-Expires', '2;refresher=uac'],
      ['Require', 'timer'],
      ['X-Kallglot-Session-Id', 'ses_1'],
    ]);
    vi.advanceTimersByTime(1999);
    expect(tel.byes).toHaveLength(0);
    vi.advanceTimersByTime(1);
    await settle();
    expect(pbxDlg.byes).toHaveLength(1);
    expect(tel.byes).toHaveLength(1);
    expect(reasonOf(pbxDlg.byes[0])).toContain('session_timer_expired');
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'timeout' }]);
    h.assertClean();
  });

  it('session timer: no Require: timer from Telnyx → none on the PBX 200; a relayed 2xx refresh re-arms it', async () => {
    vi.useFakeTimers();
    const h = harness();
    const { pbx, tel, pbxDlg } = await bridged(h, { headers: [['Session-Expires', '2']] });
    expect(pbx.answered?.headers).toEqual([
      ['Session-Expires', '2'],
      ['X-Kallglot-Session-Id', 'ses_1'],
    ]);
    vi.advanceTimersByTime(1500);
    pbxDlg.receive('INVITE', { body: HOLD_SDP, contentType: SDP });
    tel.sent[0]!.reply(200, { body: HOLD_ANSWER, contentType: SDP, headers: [['Session-Expires', '2;refresher=uac']] });
    await settle();
    vi.advanceTimersByTime(1999); // 3.5 s after answer, 1.999 s after the refresh
    expect(tel.byes).toHaveLength(0);
    expect(h.ends).toEqual([]);
    // A failed refresh does not re-arm.
    pbxDlg.receive('UPDATE');
    tel.sent[1]!.reply(491);
    await settle();
    vi.advanceTimersByTime(1);
    await settle();
    expect(tel.byes).toHaveLength(1);
    expect(pbxDlg.byes).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'timeout' }]);
    h.assertClean();
  });
});

describe('CallSession: gateway hang-up during setup (drain timeout)', () => {
  it('while createSession is pending: PBX gets 503, the late session is ended once, no INVITE', async () => {
    const h = harness();
    const pbx = await h.call();
    h.manager.hangUpAll('drain_timeout');
    await settle();
    expect(pbx.finalResponse?.status).toBe(503);
    await h.createOk('ses_late');
    expect(h.engine.invites).toHaveLength(0);
    expect(h.ends).toEqual([{ id: 'ses_late', reason: 'completed' }]);
    h.assertClean();
  });

  it('while the translated leg rings: the leg is cancelled, PBX gets 503, no fallback INVITE', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).ring(180);
    h.manager.hangUpAll('drain_timeout');
    await settle();
    expect(h.invite(0).cancelCalls).toHaveLength(1);
    expect(pbx.finalResponse?.status).toBe(503);
    expect(h.engine.invites).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'completed' }]);
    h.assertClean();
  });

  it('a translated-leg 503 crossing the hang-up does not start the direct route', async () => {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    h.invite(0).fail(503); // the call logic has not seen it yet
    h.manager.hangUpAll('drain_timeout');
    await settle();
    expect(pbx.finalResponse?.status).toBe(503);
    expect(h.engine.invites).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'completed' }]);
    h.assertClean();
  });

  it('a Kallglot failure after the hang-up does not start the direct route', async () => {
    const h = harness();
    const pbx = await h.call();
    h.manager.hangUpAll('drain_timeout');
    await h.createFails(new Error('socket hang up'));
    expect(pbx.finalResponse?.status).toBe(503);
    expect(h.engine.invites).toHaveLength(0);
    expect(h.ends).toEqual([]);
    h.assertClean();
  });
});
