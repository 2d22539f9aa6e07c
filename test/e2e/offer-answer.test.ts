/**
 * Offer/answer across the gateway when the offer is not in the INVITE, end to end with real SIPp:
 * - delayed offer: the PBX's INVITE has no SDP (Cisco CUCM/CUBE's default). Telnyx's 200 carries the offer to the
 *   PBX, and the PBX's answer, in its ACK, must reach Telnyx in the gateway's ACK; before, that ACK was empty and the
 *   call connected with no audio;
 * - a re-INVITE without SDP from the PBX: the new offer comes back in the 200, the answer goes on in the ACK.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { callThrough, bodyOf, findMessages, startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('delayed offer and re-INVITE without SDP', () => {
  it.each(['udp', 'tcp'] as const)(
    'delayed offer (PBX over %s): the ACK to Telnyx carries the PBX answer SDP, byte for byte',
    async (transport) => {
      const e = (env = await startE2e());
      const { pbx, telnyx, d } = await callThrough(e, {
        uac: 'uac-invite-no-sdp-answer-in-ack-then-bye.xml',
        uas: 'uas-answer-200-expect-bye.xml',
        transport,
      });
      expect(pbx.exitCode, d()).toBe(0);
      expect(telnyx.exitCode, d()).toBe(0);
      const invite = findMessages(telnyx.messages, 'received', 'INVITE ')[0];
      expect(bodyOf(invite?.text ?? ''), d()).toBe('');
      const pbxAck = findMessages(pbx.messages, 'sent', 'ACK ')[0];
      const telnyxAck = findMessages(telnyx.messages, 'received', 'ACK ')[0];
      expect(bodyOf(pbxAck?.text ?? ''), d()).toContain('o=pbx-answer');
      expect(bodyOf(telnyxAck?.text ?? ''), d()).toBe(bodyOf(pbxAck?.text ?? ''));
      const offerToPbx = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE')[0];
      expect(bodyOf(offerToPbx?.text ?? ''), d()).toContain('o=sipp-uas');
      await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
      await e.gw.waitForLog((l) => l.msg === 'delayed offer: the PBX answer relayed to Telnyx in the ACK');
    },
  );

  it('re-INVITE without SDP from the PBX: Telnyx offers in the 200, the PBX answer reaches it in the ACK', async () => {
    const e = (env = await startE2e());
    const { pbx, telnyx, d } = await callThrough(e, {
      uac: 'uac-reinvite-no-sdp-answer-in-ack.xml',
      uas: 'uas-reinvite-offer-expect-answer-in-ack.xml',
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0); // its scenario fails when the ACK brings no o=pbx-reanswer
    const reinvite = findMessages(telnyx.messages, 'received', 'INVITE ')[1];
    expect(bodyOf(reinvite?.text ?? ''), d()).toBe('');
    const reoffer = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE')[1];
    expect(bodyOf(reoffer?.text ?? ''), d()).toContain('o=telnyx-reoffer');
    await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      endReason: 'bye_from_pbx',
    });
  });
});
