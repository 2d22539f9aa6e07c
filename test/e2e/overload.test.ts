/**
 * End to end with real SIPp: the overload control's bound on setups in flight. With MAX_INFLIGHT_SETUPS=2 and a
 * Kallglot double that takes 2.5 s to create a session, a burst of 6 calls within one second gets 2 through and 4
 * refused at once with 503 + Retry-After: 1, before any Kallglot request and statelessly (no 100 Trying, nothing
 * kept: the ACK to the 503 gets no answer); the refusals are counted by reason in /metrics and logged as one
 * aggregated line, not one per INVITE. (The event-loop lag check is covered by unit tests
 * with an injected clock: a real lag cannot be produced on demand without timing assertions.)
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER, findMessages, headerOf, startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('overload control', () => {
  it('MAX_INFLIGHT_SETUPS=2: a burst of 6 slow setups gets 2 through and 4 refused with 503 + Retry-After 1', async () => {
    const e = (env = await startE2e({
      MAX_INFLIGHT_SETUPS: '2',
      KALLGLOT_REQUEST_TIMEOUT_MS: '5000',
      KALLGLOT_CREATE_DEADLINE_MS: '6000',
    }));
    e.sandbox.injectFailure({ endpoint: 'create', latencyMs: 2500 });
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 2, timeoutSec: 30 });
    await uas.ready;
    const uac = await e.sipp({
      scenario: 'uac-invite-200-or-503.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: TRANSLATED_NUMBER,
      calls: 6,
      rate: 6,
      ratePeriodMs: 1000,
      concurrent: 6,
      durationMs: 500,
      timeoutSec: 30,
    }).done;
    if (uac.exitCode !== 0) setTimeout(() => void uas.stop(), 2000);
    const s = await uas.done;
    const d = () => e.diag(uac, s);
    expect(uac.exitCode, d()).toBe(0);

    const answered = new Set(
      findMessages(uac.messages, 'received', 'SIP/2.0 200', 'INVITE').map((m) => headerOf(m.text, 'Call-ID')),
    );
    const refused = findMessages(uac.messages, 'received', 'SIP/2.0 503', 'INVITE');
    expect(answered.size, d()).toBe(2);
    expect(new Set(refused.map((m) => headerOf(m.text, 'Call-ID'))).size, d()).toBe(4);
    for (const m of refused) {
      expect(headerOf(m.text, 'Retry-After'), d()).toBe('1');
      expect(m.text, d()).toMatch(/^SIP\/2\.0 503 Service Unavailable \(overloaded\)/);
    }
    // Refused statelessly (the engine's screen): no 100 Trying before the 503, and nothing after it (SIPp's ACK
    // matches no transaction and is dropped, not answered).
    const refusedIds = new Set(refused.map((m) => headerOf(m.text, 'Call-ID')));
    const toRefused = findMessages(uac.messages, 'received', 'SIP/2.0').filter((m) =>
      refusedIds.has(headerOf(m.text, 'Call-ID')),
    );
    expect(toRefused.length, d()).toBe(refused.length);
    expect(e.sandbox.stats().createRequests, d()).toBe(2); // the refused calls never reached Kallglot

    const metrics = await (await fetch(`http://127.0.0.1:${e.gw.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^kallglot_gateway_admission_rejects_total\{reason="inflight_setups"\} 4$/m);
    const line = await e.gw.waitForLog((l) => String(l.msg).startsWith('overloaded: refusing new calls'), 5000);
    expect(line).toMatchObject({ level: 'warn', refused: { inflight_setups: expect.any(Number) } });
    expect(e.gw.logs.filter((l) => l.msg === 'INVITE refused at admission')).toEqual([]);
    await waitFor(() => e.sandbox.stats().ended === 2, 10_000, d);
  });
});
