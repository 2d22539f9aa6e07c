/**
 * End to end, real SIPp on both sides: the translated leg (INVITE sip:sess_…@sip.telnyx.com) fails before answer.
 * Anything but the callee's own answer falls back to the direct route; 486/600/603 are relayed (policy.ts
 * isFinalFailure). Either way the session created for the translated leg is ended exactly once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  DIRECT_URI,
  E2E_TIMEOUT_MS,
  TRANSLATED_URI,
  inviteUris,
  received,
  startRig,
  stopRig,
  waitForSessionsEnded,
  waitForSummary,
} from './failure-rig.ts';

afterEach(stopRig);

describe('translated leg fails before answer', () => {
  it('503 → fallback INVITE on the direct route is answered; the translated session ends with reason error', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    const uas = await rig.startUas('uas-translated-503-direct-200.xml', { calls: 2 });
    const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
    const telnyx = await uas.done;
    expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    const uris = inviteUris(telnyx);
    expect(uris, rig.diag(pbx, telnyx)).toHaveLength(2);
    expect(uris[0]).toMatch(TRANSLATED_URI);
    expect(uris[0]).toBe(`sip:${session.id}@sip.telnyx.com`);
    expect(uris[1]).toBe(DIRECT_URI);
    const [translatedInvite, directInvite] = received(telnyx).filter((m) => m.method === 'INVITE');
    expect(translatedInvite!.text).toMatch(new RegExp(`^X-Kallglot-Session-Id:\\s*${session.id}\\s*$`, 'im'));
    expect(directInvite!.text).not.toMatch(/X-Kallglot-Session-Id/i);
    expect(translatedInvite!.callId).not.toBe(directInvite!.callId);

    // Early media decision: the translated leg's 183 + SDP reached the PBX only as a plain 180 without SDP.
    const provisional = received(pbx).filter((m) => m.status !== undefined && m.status > 100 && m.status < 200);
    expect(
      provisional.map((m) => m.status),
      rig.diag(pbx, telnyx),
    ).not.toContain(183);
    expect(provisional.length).toBeGreaterThan(0);
    for (const p of provisional) expect(p.text).not.toMatch(/sipp-uas-early|^Content-Type:\s*application\/sdp/im);

    expect(session).toMatchObject({ endReason: 'error', endCalls: 1 });
    expect(rig.sandbox.stats()).toMatchObject({ created: 1, ended: 1, createRequests: 1 });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'fallback',
      fallbackReason: 'translated_leg_503',
      sessionId: session.id,
      telnyxUri: DIRECT_URI,
      endReason: 'bye_from_pbx',
      sipStatus: 200,
    });
  });

  it('no answer within TRANSLATED_LEG_TIMEOUT_SEC → translated INVITE cancelled, direct route answered, session ended', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig({ TRANSLATED_LEG_TIMEOUT_SEC: '1' });
    const uas = await rig.startUas('uas-translated-ring-cancel-direct-200.xml', { calls: 2 });
    const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
    const telnyx = await uas.done;
    expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
    expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);

    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    const session = sessions[0]!;
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([`sip:${session.id}@sip.telnyx.com`, DIRECT_URI]);
    const translatedCallId = received(telnyx).find((m) => m.method === 'INVITE')!.callId;
    expect(
      received(telnyx)
        .filter((m) => m.callId === translatedCallId)
        .map((m) => m.method),
    ).toEqual(['INVITE', 'CANCEL', 'ACK']);
    expect(session).toMatchObject({ endReason: 'error', endCalls: 1 });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'fallback',
      fallbackReason: 'translated_leg_408',
      sessionId: session.id,
      telnyxUri: DIRECT_URI,
      endReason: 'bye_from_pbx',
      sipStatus: 200,
    });
  });

  it('486 (the callee is busy) → relayed to the PBX, no fallback INVITE, the session ends', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig();
    // Room for a second call, so a fallback INVITE (there must be none) would be answered and logged.
    const uas = await rig.startUas('uas-486-busy.xml', { calls: 2 });
    const pbx = await rig.runPbx('uac-invite-expect-486.xml');
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    const [sessions, summary] = await Promise.all([waitForSessionsEnded(rig, 1), waitForSummary(rig)]);
    await uas.stop();
    const telnyx = await uas.done;
    const session = sessions[0]!;
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([`sip:${session.id}@sip.telnyx.com`]);
    expect(
      received(telnyx).map((m) => m.method ?? m.status),
      rig.diag(pbx, telnyx),
    ).toEqual(['INVITE', 'ACK']);
    expect(rig.gw.logs.filter((l) => l.msg === 'outbound INVITE')).toHaveLength(1);
    expect(session.endCalls).toBe(1);
    expect(session.endReason).toBe('completed');
    expect(rig.sandbox.stats()).toMatchObject({ created: 1, ended: 1 });
    expect(summary, rig.diag(pbx, telnyx)).toMatchObject({
      route: 'translated',
      sessionId: session.id,
      endReason: 'translated_leg_486',
      sipStatus: 486,
    });
    expect(summary.fallbackReason).toBeUndefined();
  });
});
