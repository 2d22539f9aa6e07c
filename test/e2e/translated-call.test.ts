/**
 * End to end with real SIPp: PBX (SIPp UAC) → gateway daemon → Telnyx (SIPp UAS), Kallglot played by the sandbox.
 * Translated calls hung up from either side, a bypass call, SDP pass-through, UDP and TCP toward the PBX.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { SippResult } from '../helpers/sipp.ts';
import {
  BYPASS_NUMBER,
  TRANSLATED_NUMBER,
  bodyOf,
  findMessages,
  headerOf,
  sdpLines,
  startE2e,
  waitFor,
  type E2eEnv,
} from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

interface CallRun {
  uac: SippResult;
  uas: SippResult;
}

async function placeCall(
  e: E2eEnv,
  o: {
    uac: string;
    uas: string;
    service: string;
    transport?: 'udp' | 'tcp';
    durationMs?: number;
    uasDurationMs?: number;
  },
): Promise<CallRun> {
  const uas = e.sipp({ scenario: o.uas, localPort: e.uasPort, calls: 1, timeoutSec: 15, durationMs: o.uasDurationMs });
  await uas.ready;
  const uac = e.sipp({
    scenario: o.uac,
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    transport: o.transport ?? 'udp',
    service: o.service,
    calls: 1,
    durationMs: o.durationMs,
    timeoutSec: 15,
  });
  const uacResult = await uac.done;
  if (uacResult.exitCode !== 0) setTimeout(() => void uas.stop(), 1000);
  return { uac: uacResult, uas: await uas.done };
}

/** The SDP offer reaches Telnyx unchanged, and Telnyx's answer reaches the PBX unchanged. */
function expectSdpPassThrough(e: E2eEnv, r: CallRun): void {
  const d = () => e.diag(r.uac, r.uas);
  const sentOffer = findMessages(r.uac.messages, 'sent', 'INVITE ')[0];
  const gotOffer = findMessages(r.uas.messages, 'received', 'INVITE ')[0];
  const sentAnswer = findMessages(r.uas.messages, 'sent', 'SIP/2.0 200', 'INVITE')[0];
  const gotAnswer = findMessages(r.uac.messages, 'received', 'SIP/2.0 200', 'INVITE')[0];
  expect(sentOffer && gotOffer && sentAnswer && gotAnswer, d()).toBeTruthy();
  expect(headerOf(gotOffer!.text, 'Content-Type'), d()).toBe('application/sdp');
  expect(headerOf(gotAnswer!.text, 'Content-Type'), d()).toBe('application/sdp');
  const offer = sdpLines(bodyOf(sentOffer!.text), ['o=', 'm=']);
  expect(offer, d()).toHaveLength(2);
  expect(sdpLines(bodyOf(gotOffer!.text), ['o=', 'm=']), d()).toEqual(offer);
  expect(bodyOf(gotOffer!.text), d()).toBe(bodyOf(sentOffer!.text));
  const answer = sdpLines(bodyOf(sentAnswer!.text), ['o=', 'm=']);
  expect(answer[0], d()).toMatch(/^o=sipp-uas /);
  expect(sdpLines(bodyOf(gotAnswer!.text), ['o=', 'm=']), d()).toEqual(answer);
  expect(bodyOf(gotAnswer!.text), d()).toBe(bodyOf(sentAnswer!.text));
}

async function expectTranslatedCall(
  e: E2eEnv,
  r: CallRun,
  sessionReason: string,
  summaryReason: string,
): Promise<void> {
  const d = () => e.diag(r.uac, r.uas);
  expect(r.uac.exitCode, d()).toBe(0);
  expect(r.uas.exitCode, d()).toBe(0);

  const ended = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions(), 10_000, d);
  expect(e.sandbox.stats().created, d()).toBe(1);
  expect(ended, d()).toHaveLength(1);
  const session = ended[0]!;
  expect(session.id).toMatch(/^sess_/);
  expect(session.endReason, d()).toBe(sessionReason);
  expect(session.mode).toBe('bidirectional_translation');
  expect([session.sourceLanguage, session.targetLanguage]).toEqual(['de', 'en']);
  expect(session.metadata).toMatchObject({ rule: 'german-numbers', to: TRANSLATED_NUMBER, from: 'sipp' });

  const invites = findMessages(r.uas.messages, 'received', 'INVITE ');
  expect(invites, d()).toHaveLength(1);
  expect(invites[0]!.startLine, d()).toBe(`INVITE sip:${session.id}@sip.telnyx.com SIP/2.0`);
  expect(headerOf(invites[0]!.text, 'X-Kallglot-Session-Id'), d()).toBe(session.id);

  const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
  expect(e.gw.summaries(), d()).toHaveLength(1);
  expect(summary, d()).toMatchObject({
    route: 'translated',
    sessionId: session.id,
    telnyxUri: `sip:${session.id}@sip.telnyx.com`,
    endReason: summaryReason,
    sipStatus: 200,
    rule: 'german-numbers',
  });
  expect(summary.fallbackReason, d()).toBeUndefined();
  // An end retried late would bump endCalls after the first look; give it a moment to show up.
  await new Promise((res) => setTimeout(res, 300));
  expect(e.sandbox.sessions()[0]!.endCalls, d()).toBe(1);
}

describe('translated call through the gateway', () => {
  it.each(['udp', 'tcp'] as const)(
    'PBX hangs up (PBX over %s): session ended agent_hangup, SDP unchanged',
    async (transport) => {
      env = await startE2e();
      const r = await placeCall(env, {
        uac: 'uac-invite-200-then-bye.xml',
        uas: 'uas-answer-200-expect-bye.xml',
        service: TRANSLATED_NUMBER,
        transport,
        durationMs: 200,
      });
      await expectTranslatedCall(env, r, 'agent_hangup', 'bye_from_pbx');
      expectSdpPassThrough(env, r);
      // The PBX leg really used the transport asked for, and the BYE crossed the gateway to Telnyx.
      expect(findMessages(r.uac.messages, 'sent', 'INVITE ')[0]!.transport, env.diag(r.uac)).toBe(
        transport.toUpperCase(),
      );
      expect(findMessages(r.uas.messages, 'received', 'BYE ')).toHaveLength(1);
    },
    60_000,
  );

  it.each(['udp', 'tcp'] as const)(
    'Telnyx hangs up (PBX over %s): BYE relayed to the PBX, session ended customer_hangup',
    async (transport) => {
      env = await startE2e();
      const r = await placeCall(env, {
        uac: 'uac-invite-200-expect-bye.xml',
        uas: 'uas-answer-200-then-bye.xml',
        service: TRANSLATED_NUMBER,
        transport,
        uasDurationMs: 200,
      });
      await expectTranslatedCall(env, r, 'customer_hangup', 'bye_from_telnyx');
      expectSdpPassThrough(env, r);
      const byes = findMessages(r.uac.messages, 'received', 'BYE ');
      expect(byes, env.diag(r.uac, r.uas)).toHaveLength(1);
      expect(byes[0]!.transport, env.diag(r.uac, r.uas)).toBe(transport.toUpperCase());
    },
    60_000,
  );
});

describe('bypass call through the gateway', () => {
  it('dial 112: straight to Telnyx, no Kallglot session, SDP unchanged', async () => {
    const e = (env = await startE2e());
    const r = await placeCall(e, {
      uac: 'uac-invite-200-then-bye.xml',
      uas: 'uas-answer-200-expect-bye.xml',
      service: BYPASS_NUMBER,
    });
    const d = () => e.diag(r.uac, r.uas);
    expect(r.uac.exitCode, d()).toBe(0);
    expect(r.uas.exitCode, d()).toBe(0);

    const invites = findMessages(r.uas.messages, 'received', 'INVITE ');
    expect(invites, d()).toHaveLength(1);
    expect(invites[0]!.startLine, d()).toBe(`INVITE sip:${BYPASS_NUMBER}@sip.telnyx.com SIP/2.0`);
    expect(headerOf(invites[0]!.text, 'X-Kallglot-Session-Id'), d()).toBeUndefined();
    expectSdpPassThrough(e, r);

    const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
    expect(summary, d()).toMatchObject({
      route: 'bypass',
      telnyxUri: `sip:${BYPASS_NUMBER}@sip.telnyx.com`,
      endReason: 'bye_from_pbx',
      sipStatus: 200,
      rule: 'emergency-bypass',
    });
    expect(summary.sessionId, d()).toBeUndefined();
    expect(summary.fallbackReason, d()).toBeUndefined();
    expect(e.sandbox.stats(), d()).toMatchObject({ created: 0, createRequests: 0, endRequests: 0 });
    expect(e.sandbox.sessions()).toHaveLength(0);
  }, 60_000);
});
