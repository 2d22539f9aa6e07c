/**
 * End to end with real SIPp: the gateway challenges the PBX (PBX_AUTH_USERS). A PBX answering the 407 with alice's
 * password gets a normal translated call; one without credentials, or with a wrong password, gets 407 and nothing
 * else: no Kallglot session, no INVITE toward Telnyx, no call summary. The password never appears in the logs.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { computeDigestResponse, parseAuthorization, parseChallenge } from '../../src/sip/syntax/digest.ts';
import type { SippResult } from '../helpers/sipp.ts';
import {
  TRANSLATED_NUMBER,
  findMessages,
  headerOf,
  startE2e,
  waitFor,
  type E2eEnv,
  type LoggedMessage,
} from './harness.ts';

const PASSWORD = 's3cret';
const REALM = 'kallglot-e2e';
const AUTH_ENV = { PBX_AUTH_USERS: `alice:${PASSWORD},bob:other-pw`, PBX_AUTH_REALM: REALM };
const AUTH_UAC = 'uac-invite-407-auth-expect-200.xml';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

/**
 * The UAS (Telnyx, always UDP: TELNYX_SIP_TRANSPORT's default) first, then the PBX over `transport`; `password` goes
 * to the scenario's [authentication] through SIPp's -ap.
 */
async function startCall(
  e: E2eEnv,
  o: { uac: string; password?: string; transport?: 'udp' | 'tcp'; extraArgs?: string[] },
) {
  const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
  await uas.ready;
  const uac = e.sipp({
    scenario: o.uac,
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    transport: o.transport ?? 'udp',
    service: TRANSLATED_NUMBER,
    calls: 1,
    timeoutSec: 15,
    extraArgs: [...(o.password === undefined ? [] : ['-ap', o.password]), ...(o.extraArgs ?? [])],
  });
  return { uas, uac: await uac.done };
}

function challengeLogs(e: E2eEnv) {
  return e.gw.logs.filter((l) => l.msg === 'INVITE challenged');
}

/** The gateway's 407s as the PBX received them: Digest challenges for our realm, MD5 with qop=auth. */
function expectChallenges(e: E2eEnv, uac: SippResult, count: number): LoggedMessage[] {
  const d = () => e.diag(uac);
  const challenges = findMessages(uac.messages, 'received', 'SIP/2.0 407', 'INVITE');
  expect(challenges, d()).toHaveLength(count);
  for (const c of challenges) {
    const value = headerOf(c.text, 'Proxy-Authenticate');
    expect(value, d()).toMatch(/^Digest /);
    expect(parseChallenge(value!), d()).toMatchObject({ realm: REALM, algorithm: 'MD5', qop: ['auth'] });
  }
  return challenges;
}

/** The re-sent INVITE: next CSeq, same call, alice's digest computed with `password` over the gateway's nonce. */
function expectCredentialedInvite(e: E2eEnv, uac: SippResult, challenge: LoggedMessage, password: string): void {
  const d = () => e.diag(uac);
  const invites = findMessages(uac.messages, 'sent', 'INVITE ');
  expect(invites, d()).toHaveLength(2);
  const [first, second] = invites as [LoggedMessage, LoggedMessage];
  expect(headerOf(first.text, 'Proxy-Authorization'), d()).toBeUndefined();
  expect(headerOf(second.text, 'CSeq'), d()).toBe('2 INVITE');
  expect(headerOf(second.text, 'Call-ID'), d()).toBe(headerOf(first.text, 'Call-ID'));
  const cred = parseAuthorization(headerOf(second.text, 'Proxy-Authorization') ?? '');
  const nonce = parseChallenge(headerOf(challenge.text, 'Proxy-Authenticate')!).nonce;
  expect(cred, d()).toMatchObject({ username: 'alice', realm: REALM, nonce, qop: 'auth', algorithm: 'MD5' });
  const expected = computeDigestResponse({
    algorithm: 'MD5',
    username: 'alice',
    realm: REALM,
    password,
    nonce,
    method: 'INVITE',
    uri: cred.uri,
    qop: 'auth',
    nc: cred.nc,
    cnonce: cred.cnonce,
  });
  expect(cred.response, d()).toBe(expected);
}

/** Secrets must stay out of everything the daemon writes; the logged config shows the user with a redacted password. */
function expectPasswordNeverLogged(e: E2eEnv): void {
  const everything = JSON.stringify(e.gw.logs) + e.gw.stderr();
  expect(everything.includes(PASSWORD), 'gateway logs contain the PBX password').toBe(false);
  expect(everything.includes('other-pw'), 'gateway logs contain a PBX password').toBe(false);
  const config = e.gw.logs.find((l) => l.msg === 'effective configuration'); // debug: the e2e daemons log at debug
  expect(JSON.stringify(config)).toContain('alice:[redacted]');
}

/** Nothing reached Telnyx or Kallglot and no call was recorded: stop the idle UAS and read what it saw. */
async function expectNoCall(e: E2eEnv, uas: ReturnType<E2eEnv['sipp']>, uac: SippResult): Promise<void> {
  // A forwarded INVITE would be on its way within milliseconds of the 407; give it time to show up anyway.
  await new Promise((r) => setTimeout(r, 500));
  await uas.stop();
  const telnyx = await uas.done;
  const d = () => e.diag(uac, telnyx);
  expect(findMessages(telnyx.messages, 'received', ''), d()).toHaveLength(0);
  expect(e.sandbox.stats(), d()).toMatchObject({ created: 0, createRequests: 0 });
  expect(e.gw.summaries(), d()).toHaveLength(0);
  expect(
    e.gw.logs.filter((l) => l.msg === 'new call'),
    d(),
  ).toHaveLength(0);
}

describe('digest authentication of the PBX', () => {
  it.each(['udp', 'tcp'] as const)(
    'PBX answers the 407 with valid credentials (over %s): call translated and completed',
    async (transport) => {
      const e = (env = await startE2e(AUTH_ENV));
      const { uas, uac } = await startCall(e, { uac: AUTH_UAC, password: PASSWORD, transport });
      if (uac.exitCode !== 0) setTimeout(() => void uas.stop(), 1000);
      const telnyx = await uas.done;
      const d = () => e.diag(uac, telnyx);
      expect(uac.exitCode, d()).toBe(0);
      expect(telnyx.exitCode, d()).toBe(0);

      const [challenge] = expectChallenges(e, uac, 1);
      expectCredentialedInvite(e, uac, challenge!, PASSWORD);
      expect(findMessages(uac.messages, 'received', 'SIP/2.0 200', 'INVITE'), d()).toHaveLength(1);
      expect(challengeLogs(e), d()).toHaveLength(1);
      expect(challengeLogs(e)[0], d()).toMatchObject({ why: 'no_credentials' });

      const ended = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions(), 10_000, d);
      expect(e.sandbox.stats(), d()).toMatchObject({ created: 1, createRequests: 1 });
      const session = ended[0]!;
      expect(session.metadata, d()).toMatchObject({ rule: 'german-numbers', to: TRANSLATED_NUMBER });

      // Only the authenticated INVITE crossed the gateway, and the PBX's credentials stayed on the PBX leg.
      const invites = findMessages(telnyx.messages, 'received', 'INVITE ');
      expect(invites, d()).toHaveLength(1);
      expect(invites[0]!.startLine, d()).toBe(`INVITE sip:${session.id}@sip.telnyx.com SIP/2.0`);
      expect(headerOf(invites[0]!.text, 'Proxy-Authorization'), d()).toBeUndefined();
      expect(findMessages(telnyx.messages, 'received', 'BYE '), d()).toHaveLength(1);

      const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
      expect(e.gw.summaries(), d()).toHaveLength(1);
      expect(summary, d()).toMatchObject({
        route: 'translated',
        sessionId: session.id,
        endReason: 'bye_from_pbx',
        sipStatus: 200,
      });
      // An end retried late would bump endCalls after the first look; give it a moment to show up.
      await new Promise((r) => setTimeout(r, 300));
      expect(e.sandbox.sessions()[0]!.endCalls, d()).toBe(1);
      expectPasswordNeverLogged(e);
    },
    60_000,
  );

  it('PBX without credentials: 407 with a Digest challenge, no session, nothing sent to Telnyx', async () => {
    const e = (env = await startE2e(AUTH_ENV));
    const { uas, uac } = await startCall(e, { uac: 'uac-invite-expect-407.xml' });
    expect(uac.exitCode, e.diag(uac)).toBe(0);
    expectChallenges(e, uac, 1);
    expect(findMessages(uac.messages, 'sent', 'ACK '), e.diag(uac)).toHaveLength(1);
    await waitFor(
      () => challengeLogs(e).length === 1,
      5000,
      () => e.diag(uac),
    );
    expect(challengeLogs(e)[0], e.diag(uac)).toMatchObject({ why: 'no_credentials' });
    await expectNoCall(e, uas, uac);
    expectPasswordNeverLogged(e);
  }, 60_000);

  it('PBX with a wrong password: challenged again, SIPp fails the call (exit 1), no session, nothing sent to Telnyx', async () => {
    // The scenario ACKs the second 407 and then fails on purpose, so exit code 1 is the expected outcome here.
    // "-default_behaviors all,-bye": SIPp would otherwise send a BYE for the call it aborts, a request outside any
    // dialog that is no part of what is tested (the gateway answers it 481).
    const e = (env = await startE2e(AUTH_ENV));
    const { uas, uac } = await startCall(e, {
      uac: AUTH_UAC,
      password: 'not-the-password',
      extraArgs: ['-default_behaviors', 'all,-bye'],
    });
    const d = () => e.diag(uac);
    expect(uac.exitCode, d()).toBe(1);
    expect(uac.stopped, d()).toBe(false);
    // Failed where the scenario fails on purpose (after ACKing the second 407), not on some unexpected message.
    expect(uac.errors, d()).toMatch(/receive timeout on message .* without label to jump to/);
    expect(uac.errors, d()).not.toMatch(/unexpected/i);
    expect(findMessages(uac.messages, 'sent', 'BYE '), d()).toHaveLength(0);
    const [first] = expectChallenges(e, uac, 2);
    expectCredentialedInvite(e, uac, first!, 'not-the-password');
    expect(findMessages(uac.messages, 'received', 'SIP/2.0 200'), d()).toHaveLength(0);
    expect(findMessages(uac.messages, 'sent', 'ACK '), d()).toHaveLength(2); // one per 407: both transactions closed
    await waitFor(() => challengeLogs(e).length === 2, 5000, d);
    expect(
      challengeLogs(e).map((l) => l.why),
      d(),
    ).toEqual(['no_credentials', 'response mismatch']);
    await expectNoCall(e, uas, uac);
    expectPasswordNeverLogged(e);
  }, 60_000);
});
