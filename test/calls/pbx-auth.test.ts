import { describe, expect, it } from 'vitest';
import { PbxAuthenticator, parseUserList, type PbxAuthResult } from '../../src/calls/pbx-auth.ts';
import { buildAuthorization, parseChallenge } from '../../src/sip/syntax/digest.ts';
import type { InboundCall } from '../../src/sip/port.ts';

const REALM = 'kallglot-test';
const URI = 'sip:+4930123456@127.0.0.1:5060';

/** PbxAuthenticator only reads header(name); everything else of an InboundCall is irrelevant here. */
function fakeCall(headers: Record<string, string> = {}): InboundCall {
  const byName = new Map(Object.entries(headers).map(([n, v]) => [n.toLowerCase(), v]));
  return { header: (name: string) => byName.get(name.toLowerCase()) } as unknown as InboundCall;
}

function challengeOf(result: PbxAuthResult): string {
  if (result.ok) throw new Error(`expected a challenge, got ok for ${result.username}`);
  const values = result.headers.filter(([n]) => n === 'Proxy-Authenticate').map(([, v]) => v);
  expect(values).toHaveLength(1);
  return values[0]!;
}

function answer(challengeValue: string, username: string, password: string, method = 'INVITE'): string {
  return buildAuthorization({ challenge: parseChallenge(challengeValue), method, uri: URI, username, password });
}

describe('parseUserList', () => {
  it('maps user to password for each entry', () => {
    const users = parseUserList(['alice:s3cret', 'bob:pw2']);
    expect([...users]).toEqual([
      ['alice', 's3cret'],
      ['bob', 'pw2'],
    ]);
    expect(parseUserList([]).size).toBe(0);
  });

  it('splits at the first colon only, so a password may contain colons', () => {
    expect(parseUserList(['carol:a:b::c']).get('carol')).toBe('a:b::c');
  });

  it.each(['alice', ':pw', 'alice:', ''])('rejects the malformed entry %j', (entry) => {
    expect(() => parseUserList(['bob:ok', entry])).toThrow(/user:password/);
  });
});

describe('PbxAuthenticator.check', () => {
  const auth = new PbxAuthenticator(REALM, parseUserList(['alice:s3cret', 'bob:hunter2']));

  it('answers an INVITE without Proxy-Authorization with 407 and a Digest challenge for our realm', () => {
    const result = auth.check(fakeCall());
    expect(result).toMatchObject({ ok: false, status: 407, why: 'no_credentials' });
    const value = challengeOf(result);
    expect(value).toMatch(/^Digest /);
    const challenge = parseChallenge(value);
    expect(challenge).toMatchObject({ realm: REALM, algorithm: 'MD5', qop: ['auth'], stale: false });
    expect(challenge.nonce).not.toBe('');
    for (const secret of ['s3cret', 'hunter2']) expect(value).not.toContain(secret);
  });

  it('accepts credentials answering its challenge with the right password', () => {
    const value = challengeOf(auth.check(fakeCall()));
    const result = auth.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 's3cret') }));
    expect(result).toEqual({ ok: true, username: 'alice' });
    // A second user, and header-name case does not matter for the lookup the engine does.
    const bob = auth.check(fakeCall({ 'proxy-authorization': answer(value, 'bob', 'hunter2') }));
    expect(bob).toEqual({ ok: true, username: 'bob' });
  });

  it('challenges again on a wrong password', () => {
    const value = challengeOf(auth.check(fakeCall()));
    const result = auth.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 'wrong') }));
    expect(result).toMatchObject({ ok: false, status: 407, why: 'response mismatch' });
    expect(parseChallenge(challengeOf(result)).realm).toBe(REALM);
    // Another user's password is a wrong password too.
    expect(auth.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 'hunter2') }))).toMatchObject({
      ok: false,
      status: 407,
    });
  });

  it('challenges again for an unknown user', () => {
    const value = challengeOf(auth.check(fakeCall()));
    const result = auth.check(fakeCall({ 'Proxy-Authorization': answer(value, 'mallory', 's3cret') }));
    expect(result).toMatchObject({ ok: false, status: 407, why: 'unknown user' });
    challengeOf(result);
  });

  it('rejects credentials not made for this INVITE challenge: other method, forged nonce, other realm, garbage', () => {
    const value = challengeOf(auth.check(fakeCall()));
    const challenge = parseChallenge(value);
    const cases = [
      answer(value, 'alice', 's3cret', 'REGISTER'),
      buildAuthorization({
        challenge: { ...challenge, nonce: '18f0000000.AAAAAAAAAAAAAAAAAAAAAA' },
        method: 'INVITE',
        uri: URI,
        username: 'alice',
        password: 's3cret',
      }),
      buildAuthorization({
        challenge: { ...challenge, realm: 'other' },
        method: 'INVITE',
        uri: URI,
        username: 'alice',
        password: 's3cret',
      }),
      'Basic YWxpY2U6czNjcmV0',
    ];
    for (const credentials of cases) {
      expect(auth.check(fakeCall({ 'Proxy-Authorization': credentials })), credentials).toMatchObject({
        ok: false,
        status: 407,
      });
    }
    // A nonce issued by another authenticator (other HMAC key) is not ours either.
    const other = new PbxAuthenticator(REALM, parseUserList(['alice:s3cret']));
    expect(other.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 's3cret') }))).toMatchObject({
      ok: false,
      why: 'invalid nonce',
    });
  });
});

describe('PbxAuthenticator behind a dispatcher: nonces shared by instances with the same configuration', () => {
  it('a nonce issued by one instance is accepted by another with the same realm and users (or after a restart)', () => {
    const first = new PbxAuthenticator(REALM, parseUserList(['alice:s3cret', 'bob:hunter2']));
    const second = new PbxAuthenticator(REALM, parseUserList(['bob:hunter2', 'alice:s3cret']));
    const value = challengeOf(first.check(fakeCall()));
    const result = second.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 's3cret') }));
    expect(result).toEqual({ ok: true, username: 'alice' });
  });

  it('refuses a nonce issued under another configuration (another password set): it was not signed by us', () => {
    const other = new PbxAuthenticator(REALM, parseUserList(['alice:s3cret', 'bob:changed']));
    const ours = new PbxAuthenticator(REALM, parseUserList(['alice:s3cret', 'bob:hunter2']));
    const value = challengeOf(other.check(fakeCall()));
    const result = ours.check(fakeCall({ 'Proxy-Authorization': answer(value, 'alice', 's3cret') }));
    expect(result.ok).toBe(false);
  });
});
