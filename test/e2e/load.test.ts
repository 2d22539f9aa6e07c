/**
 * End to end with real SIPp: 100 translated calls back to back (10 per second, up to 20 at once) through the daemon.
 * Every call must succeed on both sides, every call gets its own Kallglot session, and every session is ended
 * exactly once. Timings are printed for the record, never asserted (docs/CONVENTIONS.md).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSLATED_NUMBER, findMessages, headerOf, startE2e, waitFor, type E2eEnv } from './harness.ts';

const CALLS = 100;

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

describe('load: 100 translated calls back to back', () => {
  it('completes every call and ends every session exactly once', async () => {
    // LOG_LEVEL info: debug logs of 100 calls would only slow the daemon and the test's log parsing.
    const e = (env = await startE2e({ MAX_CALLS_PER_SECOND: '50', LOG_LEVEL: 'info' }));
    const uas = e.sipp({
      scenario: 'uas-answer-200-expect-bye.xml',
      localPort: e.uasPort,
      calls: CALLS,
      timeoutSec: 45,
    });
    await uas.ready;
    const startedAt = Date.now();
    const uacRun = e.sipp({
      scenario: 'uac-invite-200-then-bye.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: TRANSLATED_NUMBER,
      calls: CALLS,
      rate: 10,
      concurrent: 20,
      durationMs: 200,
      timeoutSec: 45,
    });
    const uac = await uacRun.done;
    const wallMs = Date.now() - startedAt;
    if (uac.exitCode !== 0) setTimeout(() => void uas.stop(), 2000);
    const s = await uas.done;
    const d = () => e.diag(uac, s);
    expect(uac.exitCode, d()).toBe(0);
    expect(s.exitCode, d()).toBe(0);
    expect(uac.stdout, d()).toMatch(/Failed call\s+\|\s+0\s+\|\s+0/);

    const stats = await waitFor(
      () => {
        const st = e.sandbox.stats();
        return st.created === CALLS && st.ended === CALLS && st;
      },
      20_000,
      () => `stats ${JSON.stringify(e.sandbox.stats())}\n${d()}`,
    );
    expect(stats.created).toBe(CALLS);
    const sessions = e.sandbox.sessions();
    expect(sessions).toHaveLength(CALLS);
    expect(
      sessions.filter((x) => x.endReason !== 'agent_hangup').map((x) => [x.id, x.endReason]),
      d(),
    ).toEqual([]);

    // Every INVITE reaching Telnyx targets its own session, named in both the Request-URI and the header.
    const invites = new Map<string, string>();
    for (const m of findMessages(s.messages, 'received', 'INVITE ')) {
      const id = /^INVITE sip:(sess_[^@]+)@sip\.telnyx\.com SIP\/2\.0$/.exec(m.startLine)?.[1];
      expect(id, `${m.startLine}\n${d()}`).toBeDefined();
      expect(headerOf(m.text, 'X-Kallglot-Session-Id'), d()).toBe(id);
      invites.set(headerOf(m.text, 'Call-ID')!, id!);
    }
    expect(invites.size, d()).toBe(CALLS);
    expect(new Set(invites.values())).toEqual(new Set(sessions.map((x) => x.id)));

    const summaries = await waitFor(() => e.gw.summaries().length >= CALLS && e.gw.summaries(), 10_000, d);
    expect(summaries, d()).toHaveLength(CALLS);
    for (const sum of summaries) {
      expect(sum, d()).toMatchObject({ route: 'translated', endReason: 'bye_from_pbx', sipStatus: 200 });
      expect(sum.fallbackReason).toBeUndefined();
      expect(sum.telnyxUri).toBe(`sip:${String(sum.sessionId)}@sip.telnyx.com`);
    }
    expect(new Set(summaries.map((x) => x.sessionId))).toEqual(new Set(sessions.map((x) => x.id)));

    // Late duplicate ends would show up as endCalls > 1.
    await new Promise((res) => setTimeout(res, 500));
    const ends = e.sandbox.sessions().map((x) => x.endCalls);
    expect(
      ends.filter((n) => n !== 1),
      d(),
    ).toEqual([]);
    expect(e.sandbox.stats().endRequests).toBe(CALLS);

    const setup = summaries.map((x) => Number(x.setupMs)).sort((a, b) => a - b);
    console.info(
      `load: ${CALLS} calls in ${wallMs} ms wall; gateway setup ms (PBX INVITE in to PBX ACK) ` +
        `min ${setup[0]} median ${percentile(setup, 50)} p95 ${percentile(setup, 95)} max ${setup[setup.length - 1]}`,
    );
  }, 60_000);
});
