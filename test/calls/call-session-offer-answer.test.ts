/**
 * Offer/answer across the B2BUA (RFC 3264, RFC 6337) when the offer is not in the INVITE: delayed offer from the PBX
 * (Cisco CUCM/CUBE's default), and re-INVITEs without SDP. The answer travels in the PBX's ACK and must reach Telnyx
 * in the ACK of its 2xx; without one, the call is hung up with a logged reason rather than left silent.
 */
import { describe, expect, it } from 'vitest';
import { harness, PBX_SDP, TELNYX_SDP } from './call-harness.ts';
import { settle } from './fake-engine.ts';

const SDP = 'application/sdp';
const NO_SDP = { body: Buffer.alloc(0), contentType: undefined };

describe('delayed offer (INVITE without SDP)', () => {
  it('sends the Telnyx INVITE without SDP, relays the offer in the 200 and the PBX answer in the Telnyx ACK', async () => {
    const h = harness();
    const pbx = await h.call(NO_SDP);
    await h.createOk('ses_1');
    const out = h.invite(0);
    expect(out.opts.body?.length ?? 0).toBe(0);
    expect(out.opts.deferAck).toBe(true);
    const tel = out.answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    expect(pbx.answered).toMatchObject({ status: 200, body: TELNYX_SDP, contentType: SDP });
    expect(tel.ackSent).toBeUndefined(); // held back until the PBX answers
    const pbxDlg = pbx.ack({ body: PBX_SDP, contentType: SDP });
    await settle();
    expect(tel.ackSent).toEqual({ body: PBX_SDP, contentType: SDP });
    expect(tel.ackCalls).toBe(1);
    pbxDlg.remoteBye();
    await settle();
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'agent_hangup' }]);
    h.assertClean();
  });

  it('an ACK without the answer hangs up both legs (no_sdp_answer) and ends the session once, with error', async () => {
    const h = harness();
    const pbx = await h.call(NO_SDP);
    await h.createOk('ses_1');
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    const pbxDlg = pbx.ack(); // no body
    await settle();
    expect(tel.byes).toHaveLength(1);
    expect(pbxDlg.byes).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'error' }]);
    expect(h.summaries).toMatchObject([{ route: 'translated', endReason: 'no_sdp_answer' }]);
    h.assertClean();
  });

  it('an INVITE with SDP is not deferred: the engine ACKs the 200 itself', async () => {
    const h = harness();
    await h.call();
    await h.createOk('ses_1');
    expect(h.invite(0).opts.deferAck).toBe(false);
  });
});

describe('re-INVITE without SDP', () => {
  async function bridged() {
    const h = harness();
    const pbx = await h.call();
    await h.createOk('ses_1');
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    const pbxDlg = pbx.ack();
    await settle();
    return { h, tel, pbxDlg };
  }

  it('from the PBX: relayed without SDP, the offer back in the 200, the PBX answer in the Telnyx ACK', async () => {
    const { h, tel, pbxDlg } = await bridged();
    const reinvite = pbxDlg.receive('INVITE');
    await settle();
    const sent = tel.sent[0];
    expect(sent).toMatchObject({ method: 'INVITE' });
    expect(sent?.body?.length ?? 0).toBe(0);
    sent?.reply(200, { body: TELNYX_SDP, contentType: SDP });
    await settle();
    expect(reinvite.final).toMatchObject({ status: 200, body: TELNYX_SDP });
    expect(sent?.ack).toBeUndefined();
    reinvite.acked({ body: PBX_SDP, contentType: SDP });
    await settle();
    expect(sent?.ack).toEqual({ body: PBX_SDP, contentType: SDP });
    expect(tel.byes).toHaveLength(0);
    pbxDlg.remoteBye();
    await settle();
    h.assertClean();
  });

  it('from Telnyx, ACKed without an answer: both legs hung up, the session ended once', async () => {
    const { h, tel, pbxDlg } = await bridged();
    const reinvite = tel.receive('INVITE');
    await settle();
    pbxDlg.sent[0]?.reply(200, { body: PBX_SDP, contentType: SDP });
    await settle();
    reinvite.acked({});
    await settle();
    expect(pbxDlg.sent[0]?.ack).toEqual({});
    expect(tel.byes).toHaveLength(1);
    expect(pbxDlg.byes).toHaveLength(1);
    expect(h.ends).toEqual([{ id: 'ses_1', reason: 'error' }]);
    expect(h.summaries).toMatchObject([{ endReason: 'no_sdp_answer' }]);
    h.assertClean();
  });
});
