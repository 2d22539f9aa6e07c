/**
 * End to end, real SIPp on both sides: the PBX cancels its INVITE (README "Call flow" step 6: CANCEL cancels the
 * outbound leg; every path ends the session once). Covers the three moments a CANCEL can hit: while Telnyx rings,
 * while the Kallglot create is still in flight (no Telnyx leg yet), and crossing Telnyx's 200.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  E2E_TIMEOUT_MS,
  TRANSLATED_URI,
  header,
  inviteUris,
  received,
  startRig,
  stopRig,
  waitForSessionsEnded,
  waitForSummary,
  type Rig,
} from './failure-rig.ts';
import type { SippResult } from '../helpers/sipp.ts';
import { E2E_ENGINE } from './engine.ts';

afterEach(stopRig);

/** The PBX side of a cancelled call: 200 for the CANCEL, then 487 for the INVITE, and nothing was answered. */
function expectPbxCancelled(rig: Rig, pbx: SippResult, telnyx?: SippResult): void {
  expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
  const responses = received(pbx).filter((m) => m.status !== undefined && m.status > 100);
  expect(
    responses.map((m) => `${m.status} ${m.cseq.replace(/^\d+\s+/, '')}`),
    rig.diag(pbx, telnyx),
  ).toEqual(expect.arrayContaining(['200 CANCEL', '487 INVITE']));
  expect(responses.some((m) => m.status === 200 && /INVITE/.test(m.cseq))).toBe(false);
}

describe('CANCEL from the PBX', () => {
  it('while Telnyx rings → CANCEL relayed to Telnyx (200 + 487), PBX gets 487, session ended agent_hangup', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    const uas = await rig.startUas('uas-ring-expect-cancel.xml');
    const pbx = await rig.runPbx('uac-cancel-expect-487.xml');
    const telnyx = await uas.done;
    expectPbxCancelled(rig, pbx, telnyx);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    expect(inviteUris(telnyx)).toEqual([`sip:${session.id}@sip.telnyx.com`]);
    expect(received(telnyx).map((m) => m.method)).toEqual(['INVITE', 'CANCEL', 'ACK']);
    expect(session).toMatchObject({ endReason: 'agent_hangup', endCalls: 1 });
    expect(rig.sandbox.stats()).toMatchObject({ created: 1, ended: 1 });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'translated',
      sessionId: session.id,
      endReason: 'caller_cancelled',
      sipStatus: 487,
    });
    expect(summary.telnyxUri).toMatch(TRANSLATED_URI);
    expect(summary.fallbackReason).toBeUndefined();
  });

  it('while the Kallglot create is in flight → PBX gets 487, no INVITE reaches Telnyx, the late session is ended', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    rig.sandbox.injectFailure({ endpoint: 'create', latencyMs: 800, times: 1 });
    const uas = await rig.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await rig.runPbx('uac-cancel-after-trying-expect-487.xml');
    expectPbxCancelled(rig, pbx);

    // The create completes after the CANCEL; the session it returns must still be ended.
    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    expect(session).toMatchObject({ endReason: 'agent_hangup', endCalls: 1 });
    expect(rig.sandbox.stats()).toMatchObject({ createRequests: 1, created: 1, ended: 1 });
    // The CANCEL was handled before the session existed: the summary has no session and no Telnyx leg.
    expect(summary, rig.diag(pbx)).toMatchObject({ route: 'rejected', endReason: 'caller_cancelled', sipStatus: 487 });
    expect(summary.sessionId).toBeUndefined();
    expect(summary.telnyxUri).toBeUndefined();
    expect(summary.fallbackReason).toBeUndefined();

    // The session's end is the last thing the call does; no INVITE may follow it.
    await rig.gw.waitForLog((l) => l.msg === 'ending Kallglot session' && l.sessionId === session.id);
    await uas.stop();
    const telnyx = await uas.done;
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([]);
    expect(
      rig.gw.logs.some((l) => l.msg === 'outbound INVITE'),
      rig.diag(pbx, telnyx),
    ).toBe(false);
  });

  it("crossing Telnyx's 200 → the gateway ACKs and BYEs the late 200, PBX gets 487, session ended once", {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    const uas = await rig.startUas('uas-200-expect-ack-bye.xml');
    const pbx = await rig.runPbx('uac-cancel-expect-487.xml');
    const telnyx = await uas.done;
    expectPbxCancelled(rig, pbx, telnyx);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    const seen = received(telnyx);
    expect(
      seen.map((m) => m.method),
      rig.diag(pbx, telnyx),
    ).toEqual(['INVITE', 'CANCEL', 'ACK', 'BYE']);
    expect(inviteUris(telnyx)).toEqual([`sip:${session.id}@sip.telnyx.com`]);
    const [invite, , ack, bye] = seen;
    // ACK and BYE belong to the dialog the 200 created (its To tag), and go to its Contact.
    for (const m of [ack!, bye!]) {
      expect(m.callId).toBe(invite!.callId);
      expect(m.uri).toMatch(/^sip:uas@127\.0\.0\.1:\d+;transport=UDP$/i);
      expect(header(m, 'To')).toMatch(/;tag=\d+SIPpTag01/);
    }
    // The embedded engine says why in its BYE; drachtio-server sends this BYE itself once a CANCEL was asked for,
    // with its own Reason (sip-dialog-controller.cpp processResponseOutsideDialog doAckBye).
    const why = E2E_ENGINE === 'drachtio' ? /cause=200 ;text="ACK-BYE due to cancel race condition"/ : /cause=487/;
    expect(header(bye!, 'Reason') ?? '').toMatch(why);

    expect(session).toMatchObject({ endReason: 'agent_hangup', endCalls: 1 });
    expect(rig.sandbox.stats()).toMatchObject({ created: 1, ended: 1 });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'translated',
      sessionId: session.id,
      endReason: 'caller_cancelled',
      sipStatus: 487,
    });
    // Nothing of the abandoned dialog is left in the gateway: one summary, no bridged call.
    expect(rig.gw.summaries()).toHaveLength(1);
    expect(rig.gw.logs.some((l) => l.msg === 'call answered and bridged')).toBe(false);
  });
});
