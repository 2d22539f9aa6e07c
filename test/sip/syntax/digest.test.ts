import { describe, expect, it } from 'vitest';
import {
  buildAuthorization,
  computeDigestResponse,
  parseAuthorization,
  parseChallenge,
  parseChallenges,
  pickChallenge,
} from '../../../src/sip/syntax/digest.ts';

describe('known vectors', () => {
  it('reproduces RFC 2617 §3.5 (MD5, qop=auth)', () => {
    const challenge = parseChallenge(
      'Digest realm="testrealm@host.com", qop="auth,auth-int", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", ' +
        'opaque="5ccc069c403ebaf9f0171e9517f40e41"',
    );
    const value = buildAuthorization({
      challenge,
      method: 'GET',
      uri: '/dir/index.html',
      username: 'Mufasa',
      password: 'Circle Of Life',
      nc: 1,
      cnonce: '0a4f113b',
    });
    const cred = parseAuthorization(value);
    expect(cred.response).toBe('6629fae49393a05397450978507c4ef1');
    expect(cred).toMatchObject({
      username: 'Mufasa',
      realm: 'testrealm@host.com',
      uri: '/dir/index.html',
      qop: 'auth',
      nc: '00000001',
      cnonce: '0a4f113b',
      opaque: '5ccc069c403ebaf9f0171e9517f40e41',
      algorithm: 'MD5',
    });
    expect(value).toMatch(/^Digest username="Mufasa", realm="testrealm@host.com", /);
    expect(value).toContain('qop=auth, nc=00000001, cnonce="0a4f113b"');
  });

  it('reproduces RFC 7616 §3.9.1 (SHA-256 and MD5, qop=auth)', () => {
    const base = {
      username: 'Mufasa',
      realm: 'http-auth@example.org',
      password: 'Circle of Life',
      nonce: '7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v',
      method: 'GET',
      uri: '/dir/index.html',
      qop: 'auth' as const,
      nc: '00000001',
      cnonce: 'f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ',
    };
    expect(computeDigestResponse({ ...base, algorithm: 'SHA-256' })).toBe(
      '753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1',
    );
    expect(computeDigestResponse({ ...base, algorithm: 'MD5' })).toBe('8ca523f5e9506fed4657c9700eebdbec');

    // Same via the header path, with the RFC's two challenges offered in one response.
    const challenge = pickChallenge([
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5, ' +
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
      'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, ' +
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"',
    ]);
    expect(challenge?.algorithm).toBe('SHA-256');
    const value = buildAuthorization({
      challenge: challenge!,
      method: 'GET',
      uri: '/dir/index.html',
      username: 'Mufasa',
      password: 'Circle of Life',
      cnonce: base.cnonce,
    });
    expect(value).toContain('response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"');
    expect(value).toContain('algorithm=SHA-256');
    expect(value).toContain('opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"');
  });
});

describe('parseChallenge', () => {
  it('accepts unquoted values, odd spacing, any order and case-insensitive names', () => {
    const c = parseChallenge(
      'digest   NONCE=abc/def+ghi ,ALGORITHM = sha-256-SESS,Realm = "sip.example.com" ,  stale=true,qop=auth',
    );
    expect(c).toMatchObject({
      realm: 'sip.example.com',
      nonce: 'abc/def+ghi',
      algorithm: 'SHA-256-sess',
      qop: ['auth'],
      stale: true,
    });
    expect(c.opaque).toBeUndefined();
  });

  it('unescapes quoted strings and keeps commas inside quotes', () => {
    const c = parseChallenge(String.raw`Digest realm="a \"quoted\" realm, with comma", nonce="n\\1", opaque="o,p"`);
    expect(c.realm).toBe('a "quoted" realm, with comma');
    expect(c.nonce).toBe('n\\1');
    expect(c.opaque).toBe('o,p');
    expect(c.algorithm).toBe('MD5');
    expect(c.qop).toEqual([]);
    expect(c.stale).toBe(false);
  });

  it('splits several challenges in one header value and skips other schemes', () => {
    const all = parseChallenges(
      'Basic realm="x", Digest realm="r1", nonce="n1", algorithm=MD5, Digest realm="r2", nonce="n2", algorithm=SHA-256',
    );
    expect(all.map((c) => [c.realm, c.algorithm])).toEqual([
      ['r1', 'MD5'],
      ['r2', 'SHA-256'],
    ]);
  });

  it('rejects values without Digest, realm or nonce, and unterminated quotes', () => {
    expect(() => parseChallenge('Basic realm="x"')).toThrow(/no Digest/);
    expect(() => parseChallenge('Digest nonce="n"')).toThrow(/realm/);
    expect(() => parseChallenge('Digest realm="r"')).toThrow(/nonce/);
    expect(() => parseChallenge('Digest realm="r, nonce=x')).toThrow(/unterminated/);
  });
});

describe('pickChallenge', () => {
  it('prefers SHA-256 over MD5 regardless of order and ignores unsupported algorithms', () => {
    const picked = pickChallenge([
      'Digest realm="r", nonce="a", algorithm=SHA-512-256',
      'Digest realm="r", nonce="b", algorithm=MD5',
      'Digest realm="r", nonce="c", algorithm="SHA-256"',
      'Digest realm="r", nonce="d", algorithm=SHA-256',
    ]);
    expect(picked?.nonce).toBe('c');
  });

  it('falls back to MD5 and skips malformed values', () => {
    expect(pickChallenge(['Digest realm="r', 'Digest nonce="x"', 'Digest realm="r", nonce="m"'])?.nonce).toBe('m');
  });

  it('returns undefined when nothing usable is offered', () => {
    expect(pickChallenge(['Basic realm="x"', 'Digest realm="r", nonce="n", algorithm=SHA-512-256'])).toBeUndefined();
    expect(pickChallenge([])).toBeUndefined();
  });
});

describe('buildAuthorization', () => {
  it('uses RFC 2069 form when no qop is offered', () => {
    const challenge = parseChallenge('Digest realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093"');
    const value = buildAuthorization({
      challenge,
      method: 'GET',
      uri: '/dir/index.html',
      username: 'Mufasa',
      password: 'Circle Of Life',
    });
    // RFC 2069 response = MD5(HA1:nonce:HA2); HA1 939e7578… is RFC 2617's, value cross-checked with md5sum(1).
    expect(parseAuthorization(value).response).toBe('670fd8c2df070c60b045671b8b24ff02');
    expect(value).not.toMatch(/qop=|nc=|cnonce=/);
  });

  it('uses auth-int only when it is the sole qop and hashes the body', () => {
    const challenge = parseChallenge('Digest realm="r", nonce="n", qop="auth-int"');
    const opts = { challenge, method: 'INVITE', uri: 'sip:bob@example.com', username: 'u', password: 'p', cnonce: 'c' };
    const a = buildAuthorization({ ...opts, body: Buffer.from('v=0\r\n') });
    const b = buildAuthorization({ ...opts, body: Buffer.from('v=1\r\n') });
    expect(a).toContain('qop=auth-int');
    expect(parseAuthorization(a).response).not.toBe(parseAuthorization(b).response);
  });

  it('escapes quotes in the username and generates a cnonce and nc', () => {
    const challenge = parseChallenge('Digest realm="r", nonce="n", qop="auth"');
    const value = buildAuthorization({
      challenge,
      method: 'REGISTER',
      uri: 'sip:r',
      username: 'a"b',
      password: 'p',
      nc: 26,
    });
    const cred = parseAuthorization(value);
    expect(cred.username).toBe('a"b');
    expect(cred.nc).toBe('0000001a');
    expect(cred.cnonce).toMatch(/^[0-9a-f]{32}$/);
  });

  it('refuses unsupported algorithms and qops', () => {
    const base = { method: 'INVITE', uri: 'sip:x', username: 'u', password: 'p' };
    expect(() =>
      buildAuthorization({ ...base, challenge: parseChallenge('Digest realm="r", nonce="n", algorithm=AKAv1-MD5') }),
    ).toThrow(/algorithm/);
    expect(() =>
      buildAuthorization({ ...base, challenge: parseChallenge('Digest realm="r", nonce="n", qop="foo"') }),
    ).toThrow(/qop/);
  });
});
