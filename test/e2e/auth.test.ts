/**
 * End to end, real SIPp on both sides: Telnyx (credential connection) challenges the gateway's INVITE and the
 * gateway answers with TELNYX_SIP_USERNAME/PASSWORD (README "Call flow" step 4); without credentials the challenge
 * is a failure of the translated leg like any other (not the callee's answer), so the call falls back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIRECT_URI,
  E2E_TIMEOUT_MS,
  digestValid,
  header,
  inviteUris,
  received,
  startRig,
  stopRig,
  waitForSessionsEnded,
  waitForSummary,
} from './failure-rig.ts';

afterEach(stopRig);

const USER = 'kallglot-gw';
const PASS = 'pw-9f3b-e2e';
const credentials = { TELNYX_SIP_USERNAME: USER, TELNYX_SIP_PASSWORD: PASS };
const uasKeys = (challenge: '401' | '407', verifyDigest: boolean) => ({
  auth_user: USER,
  auth_pass: PASS,
  challenge,
  verify_digest: verifyDigest ? '1' : '0',
});

describe('digest challenge from Telnyx', () => {
  it.each([
    // SIPp's <verifyauth> reads only "Authorization:", so for 407 the digest is checked here from the message log.
    { challenge: '407', verifyDigest: false, authHeader: 'Proxy-Authorization' },
    { challenge: '401', verifyDigest: true, authHeader: 'Authorization' },
  ] as const)(
    '$challenge → INVITE re-sent with a valid $authHeader, translated call answered',
    { timeout: E2E_TIMEOUT_MS },
    async ({ challenge, verifyDigest, authHeader }) => {
      const rig = await startRig(credentials);
      const uas = await rig.startUas('uas-407-auth-then-200.xml', { keys: uasKeys(challenge, verifyDigest) });
      const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
      const telnyx = await uas.done;
      expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
      expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

      const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
      const session = sessions[0]!;
      const translatedUri = `sip:${session.id}@sip.telnyx.com`;
      expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([translatedUri, translatedUri]);
      const [first, second] = received(telnyx).filter((m) => m.method === 'INVITE');
      expect(header(first!, authHeader)).toBeUndefined();
      // RFC 3261 §22.2: the re-sent INVITE is a new request of the same call: same Call-ID, next CSeq.
      expect(second!.callId).toBe(first!.callId);
      expect(second!.cseq).toBe('2 INVITE');
      const credential = header(second!, authHeader);
      expect(credential, rig.diag(pbx, telnyx)).toMatch(/^Digest /);
      expect(credential).toContain(`username="${USER}"`);
      expect(credential).toContain('realm="sip.telnyx.com"');
      expect(credential).toContain(`uri="${translatedUri}"`);
      expect(credential).toMatch(/nonce="\d+c0ffee1"/);
      expect(digestValid(credential!, 'INVITE', PASS), credential).toBe(true);
      expect(digestValid(credential!, 'INVITE', 'wrong-password')).toBe(false);
      expect(credential).not.toContain(PASS);
      expect(JSON.stringify(rig.gw.logs)).not.toContain(PASS);

      expect(session).toMatchObject({ endCalls: 1, endReason: 'agent_hangup' });
      expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
        route: 'translated',
        sessionId: session.id,
        telnyxUri: translatedUri,
        endReason: 'bye_from_pbx',
        sipStatus: 200,
      });
      expect(summary.fallbackReason).toBeUndefined();
    },
  );

  it('wrong password → SIPp verifyauth refuses both legs (403) and the PBX gets the 403', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    // Negative control for the scenario's <verifyauth>: a bad digest really fails the call.
    const rig = await startRig({ TELNYX_SIP_USERNAME: USER, TELNYX_SIP_PASSWORD: 'not-the-password' });
    const uas = await rig.startUas('uas-407-auth-then-200.xml', { calls: 2, keys: uasKeys('401', true) });
    const pbx = await rig.runPbx('uac-invite-expect-403.xml');
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const telnyx = await uas.done;
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(1); // both SIPp calls failed on the invalid digest
    const session = sessions[0]!;
    expect(inviteUris(telnyx)).toEqual([
      `sip:${session.id}@sip.telnyx.com`,
      `sip:${session.id}@sip.telnyx.com`,
      DIRECT_URI,
      DIRECT_URI,
    ]);
    expect(received(telnyx).filter((m) => m.method === 'ACK')).toHaveLength(4); // 401 and 403, on both legs
    expect(session).toMatchObject({ endCalls: 1, endReason: 'error' });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'fallback',
      fallbackReason: 'translated_leg_403',
      telnyxUri: DIRECT_URI,
      endReason: 'direct_leg_403',
      sipStatus: 403,
    });
  });

  it('407 with no credentials configured → fallback to the direct route (also challenged), PBX gets 503, not a 407 it cannot answer', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    const uas = await rig.startUas('uas-407-challenge-only.xml', { calls: 2 });
    const pbx = await rig.runPbx('uac-invite-expect-503.xml');
    const telnyx = await uas.done;
    expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    // One INVITE per route, none re-sent with credentials.
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([`sip:${session.id}@sip.telnyx.com`, DIRECT_URI]);
    expect(received(telnyx).some((m) => /^Proxy-Authorization:/im.test(m.text))).toBe(false);
    const refusal = received(pbx).find((m) => m.status !== undefined && m.status >= 300)!;
    expect(refusal.status).toBe(503);
    expect(refusal.text).not.toMatch(/^(Proxy|WWW)-Authenticate:/im);
    expect(session).toMatchObject({ endCalls: 1, endReason: 'error' });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'fallback',
      fallbackReason: 'translated_leg_407',
      sessionId: session.id,
      telnyxUri: DIRECT_URI,
      endReason: 'direct_leg_407',
      sipStatus: 503,
    });
  });
});
