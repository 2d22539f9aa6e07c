/**
 * End to end, real SIPp on both sides: when the Kallglot session cannot be created the call still goes through,
 * untranslated, on the direct route (README "Call flow" step 5), or is refused busy under RATE_LIMIT_POLICY=busy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { timeMs } from '../helpers/gateway.ts';
import {
  DIRECT_URI,
  E2E_TIMEOUT_MS,
  inviteUris,
  received,
  startRig,
  stopRig,
  waitForSummary,
  type Rig,
} from './failure-rig.ts';

afterEach(stopRig);

/** PBX call answered on the direct route: both SIPp sides succeed and the UAS saw only the direct INVITE. */
async function callCompletesOnDirectRoute(rig: Rig) {
  const uas = await rig.startUas('uas-answer-200-expect-bye.xml');
  const pbx = await rig.runPbx('uac-invite-200-then-bye.xml');
  const telnyx = await uas.done;
  expect(pbx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
  expect(telnyx.exitCode, rig.diag(pbx, telnyx)).toBe(0);
  expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([DIRECT_URI]);
  // Untranslated: nothing points Telnyx at a Kallglot session.
  expect(received(telnyx)[0]!.text).not.toMatch(/X-Kallglot-Session-Id/i);
  const summary = await waitForSummary(rig);
  return { pbx, telnyx, summary };
}

describe('Kallglot create fails: the call takes the direct route', () => {
  it('500 on every attempt (retried, then given up) → answered untranslated on the direct route', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig({ KALLGLOT_RETRIES: '2' });
    rig.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    const { summary } = await callCompletesOnDirectRoute(rig);
    expect(summary, rig.diag()).toMatchObject({
      route: 'fallback',
      fallbackReason: 'kallglot_internal_error',
      telnyxUri: DIRECT_URI,
      endReason: 'bye_from_pbx',
      sipStatus: 200,
    });
    expect(summary.sessionId).toBeUndefined();
    // 500 may come after the session was stored: the gateway re-sends the create in the background to find out
    // (sessions/create-resolver.ts), so more create requests may follow the call's 3.
    expect(rig.sandbox.stats()).toMatchObject({ created: 0, endRequests: 0 });
    expect(rig.sandbox.stats().createRequests).toBeGreaterThanOrEqual(3);
    expect(rig.sandbox.sessions()).toEqual([]);
  });

  it('create hangs → direct route once KALLGLOT_CREATE_DEADLINE_MS passes, not after the per-request timeout', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    // The deadline (1 s) is far below one attempt's timeout (10 s): only the deadline can explain a fallback in time.
    const rig = await startRig({ KALLGLOT_CREATE_DEADLINE_MS: '1000', KALLGLOT_REQUEST_TIMEOUT_MS: '10000' });
    rig.sandbox.injectFailure({ endpoint: 'create', hang: true });
    const { summary } = await callCompletesOnDirectRoute(rig);
    expect(summary, rig.diag()).toMatchObject({
      route: 'fallback',
      fallbackReason: 'kallglot_deadline_exceeded',
      telnyxUri: DIRECT_URI,
      endReason: 'bye_from_pbx',
    });
    const newCall = rig.gw.logs.find((l) => l.msg === 'new call')!;
    const fellBack = rig.gw.logs.find((l) => l.msg === 'falling back to the untranslated direct route')!;
    const waited = timeMs(fellBack) - timeMs(newCall);
    expect(waited, rig.diag()).toBeGreaterThanOrEqual(950);
    expect(waited, rig.diag()).toBeLessThan(10_000);
    // The call's one request; the background re-sends of a create of unknown outcome (which hang too) may follow.
    expect(rig.sandbox.stats().createRequests).toBeGreaterThanOrEqual(1);
    expect(rig.sandbox.stats().created).toBe(0);
    expect(rig.sandbox.sessions()).toEqual([]);
  });

  it('402 insufficient_api_credits → direct route at once, the create is not retried', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig({ KALLGLOT_RETRIES: '2' });
    rig.sandbox.injectFailure({ endpoint: 'create', status: 402 });
    const { summary } = await callCompletesOnDirectRoute(rig);
    expect(summary, rig.diag()).toMatchObject({
      route: 'fallback',
      fallbackReason: 'kallglot_insufficient_api_credits',
      telnyxUri: DIRECT_URI,
    });
    expect(rig.sandbox.stats()).toMatchObject({ createRequests: 1, created: 0 });
    expect(rig.sandbox.sessions()).toEqual([]);
  });
});

describe('Kallglot rate limit (429 rate_limit_exceeded with retry_after)', () => {
  // retry_after (7 s) exceeds the create deadline, so the client gives up after one request.
  const rateLimited = { endpoint: 'create', status: 429, code: 'rate_limit_exceeded', retryAfterSec: 7 } as const;

  it('RATE_LIMIT_POLICY=fallback → answered on the direct route', { timeout: E2E_TIMEOUT_MS }, async () => {
    const rig = await startRig({ RATE_LIMIT_POLICY: 'fallback' });
    rig.sandbox.injectFailure(rateLimited);
    const { summary } = await callCompletesOnDirectRoute(rig);
    expect(summary, rig.diag()).toMatchObject({
      route: 'fallback',
      fallbackReason: 'kallglot_rate_limit_exceeded',
      telnyxUri: DIRECT_URI,
    });
    expect(rig.sandbox.stats()).toMatchObject({ createRequests: 1, created: 0 });
  });

  it('RATE_LIMIT_POLICY=busy → the PBX gets 486 and no INVITE reaches Telnyx', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig({ RATE_LIMIT_POLICY: 'busy' });
    rig.sandbox.injectFailure(rateLimited);
    const uas = await rig.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await rig.runPbx('uac-invite-expect-486.xml');
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    const summary = await waitForSummary(rig);
    await uas.stop();
    const telnyx = await uas.done;
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([]);
    expect(rig.gw.logs.some((l) => l.msg === 'outbound INVITE')).toBe(false);
    expect(summary, rig.diag(pbx)).toMatchObject({
      route: 'rejected',
      endReason: 'kallglot_rate_limit_exceeded',
      sipStatus: 486,
    });
    expect(summary.telnyxUri).toBeUndefined();
    expect(summary.fallbackReason).toBeUndefined();
    const busy = received(pbx).find((m) => m.status === 486)!;
    expect(busy.text).not.toMatch(/^Retry-After:/im);
    expect(rig.sandbox.stats()).toMatchObject({ createRequests: 1, created: 0 });
  });

  it('RATE_LIMIT_POLICY=busy with RATE_LIMIT_BUSY_STATUS=503 → 503 carrying Retry-After', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const rig = await startRig({ RATE_LIMIT_POLICY: 'busy', RATE_LIMIT_BUSY_STATUS: '503' });
    rig.sandbox.injectFailure(rateLimited);
    const uas = await rig.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await rig.runPbx('uac-invite-expect-503.xml');
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    const summary = await waitForSummary(rig);
    await uas.stop();
    const telnyx = await uas.done;
    expect(inviteUris(telnyx), rig.diag(pbx, telnyx)).toEqual([]);
    expect(summary, rig.diag(pbx)).toMatchObject({
      route: 'rejected',
      endReason: 'kallglot_rate_limit_exceeded',
      sipStatus: 503,
    });
    const unavailable = received(pbx).find((m) => m.status === 503);
    expect(unavailable, rig.diag(pbx)).toBeDefined();
    expect(unavailable!.text).toMatch(/^Retry-After:\s*7\s*$/im);
    expect(rig.sandbox.stats()).toMatchObject({ createRequests: 1, created: 0 });
  });
});
