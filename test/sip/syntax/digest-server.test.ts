import { describe, expect, it } from 'vitest';
import { buildAuthorization, parseChallenge } from '../../../src/sip/syntax/digest.ts';
import { DigestServer } from '../../../src/sip/syntax/digest-server.ts';

describe('DigestServer', () => {
  const users = (name: string): string | undefined => (name === 'pbx' ? 's3cret' : undefined);
  const answer = (challengeValue: string, password = 's3cret', method = 'INVITE', username = 'pbx'): string =>
    buildAuthorization({
      challenge: parseChallenge(challengeValue),
      method,
      uri: 'sip:+4930123@gw.example',
      username,
      password,
    });

  for (const algorithm of ['MD5', 'SHA-256'] as const) {
    it(`round-trips a ${algorithm} challenge`, () => {
      const server = new DigestServer({ realm: 'gw.example', users, algorithm });
      const challenge = server.challenge();
      expect(parseChallenge(challenge)).toMatchObject({ realm: 'gw.example', algorithm, qop: ['auth'], stale: false });
      expect(server.verify(answer(challenge), 'INVITE')).toEqual({ ok: true, username: 'pbx' });
    });
  }

  it('rejects a wrong password, unknown user, other method and other realm', () => {
    const server = new DigestServer({ realm: 'gw.example', users });
    const challenge = server.challenge();
    expect(server.verify(answer(challenge, 'wrong'), 'INVITE')).toMatchObject({
      ok: false,
      reason: 'response mismatch',
    });
    expect(server.verify(answer(challenge, 's3cret', 'INVITE', 'eve'), 'INVITE')).toMatchObject({
      ok: false,
      reason: 'unknown user',
    });
    expect(server.verify(answer(challenge), 'BYE')).toMatchObject({ ok: false, reason: 'response mismatch' });
    const other = new DigestServer({ realm: 'other', users });
    expect(other.verify(answer(challenge), 'INVITE')).toMatchObject({ ok: false, reason: 'realm mismatch' });
    expect(server.verify('Basic cGJ4OnMzY3JldA==', 'INVITE')).toMatchObject({ ok: false });
  });

  it('rejects a tampered nonce and nonces from another secret', () => {
    const server = new DigestServer({ realm: 'gw.example', users, secret: Buffer.alloc(32, 1) });
    const challenge = server.challenge();
    const nonce = parseChallenge(challenge).nonce;
    const [ts, mac] = nonce.split('.');
    const later = (parseInt(ts!, 16) + 3_600_000).toString(16);
    const tampered = challenge.replace(nonce, `${later}.${mac}`);
    const res = server.verify(answer(tampered), 'INVITE');
    expect(res).toMatchObject({ ok: false, reason: 'invalid nonce' });
    expect((res as { stale?: boolean }).stale).toBeUndefined();

    const foreign = new DigestServer({ realm: 'gw.example', users, secret: Buffer.alloc(32, 2) });
    expect(foreign.verify(answer(challenge), 'INVITE')).toMatchObject({ ok: false, reason: 'invalid nonce' });
  });

  it('reports an expired nonce as stale only when the credentials are otherwise right', () => {
    let now = 1_700_000_000_000;
    const server = new DigestServer({ realm: 'gw.example', users, nonceTtlMs: 30_000, now: () => now });
    const challenge = server.challenge();
    now += 30_001;
    expect(server.verify(answer(challenge), 'INVITE')).toEqual({ ok: false, stale: true, reason: 'nonce expired' });
    expect(server.verify(answer(challenge, 'wrong'), 'INVITE')).toMatchObject({
      ok: false,
      reason: 'response mismatch',
    });
    expect(server.challenge({ stale: true })).toContain('stale=TRUE');
    now -= 1;
    expect(server.verify(answer(challenge), 'INVITE')).toMatchObject({ ok: true });
  });
});
