/**
 * The server side of SIP digest (RFC 3261 §22.4, RFC 7616): a stateless challenger (nonce = timestamp + HMAC) so
 * the gateway can optionally authenticate the PBX without keeping per-nonce state.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { computeDigestResponse, type DigestCredentials, parseAuthorization, quote } from './digest.ts';

export interface DigestServerOptions {
  realm: string;
  /** Password lookup; undefined means unknown user. */
  users: (username: string) => string | undefined;
  algorithm?: 'MD5' | 'SHA-256';
  nonceTtlMs?: number;
  /** HMAC key for nonces; random per instance by default, pass one to share nonces across instances/restarts. */
  secret?: Buffer;
  /** Clock, injectable for tests. */
  now?: () => number;
}

export type DigestVerifyResult = { ok: true; username: string } | { ok: false; stale?: boolean; reason: string };

/**
 * Stateless challenger: the nonce is `<ms timestamp hex>.<HMAC(secret, timestamp:realm)>`, so any nonce we issued
 * can be validated (and aged) without a table. nc replay tracking is deliberately not done.
 */
export class DigestServer {
  readonly realm: string;
  readonly algorithm: 'MD5' | 'SHA-256';
  readonly #users: (username: string) => string | undefined;
  readonly #nonceTtlMs: number;
  readonly #secret: Buffer;
  readonly #now: () => number;

  constructor(opts: DigestServerOptions) {
    this.realm = opts.realm;
    this.#users = opts.users;
    this.algorithm = opts.algorithm ?? 'MD5';
    this.#nonceTtlMs = opts.nonceTtlMs ?? 5 * 60_000;
    this.#secret = opts.secret ?? randomBytes(32);
    this.#now = opts.now ?? Date.now;
  }

  /** A WWW-Authenticate / Proxy-Authenticate value with a fresh nonce. */
  challenge(opts: { stale?: boolean } = {}): string {
    const parts = [
      `realm=${quote(this.realm)}`,
      `nonce=${quote(this.#makeNonce(this.#now()))}`,
      `algorithm=${this.algorithm}`,
      'qop="auth"',
    ];
    if (opts.stale) parts.push('stale=TRUE');
    return `Digest ${parts.join(', ')}`;
  }

  verify(authorizationValue: string, method: string): DigestVerifyResult {
    let cred: DigestCredentials;
    try {
      cred = parseAuthorization(authorizationValue);
    } catch (err) {
      return { ok: false, reason: (err as Error).message };
    }
    if (cred.realm !== this.realm) return { ok: false, reason: 'realm mismatch' };
    if (cred.algorithm !== this.algorithm) return { ok: false, reason: `algorithm ${cred.algorithm} not offered` };
    const issuedAt = this.#nonceTimestamp(cred.nonce);
    if (issuedAt === undefined) return { ok: false, reason: 'invalid nonce' };
    if (cred.qop !== undefined && cred.qop !== 'auth') return { ok: false, reason: `qop ${cred.qop} not offered` };
    if (cred.qop && (!cred.nc || cred.cnonce === undefined)) return { ok: false, reason: 'qop without nc/cnonce' };
    const password = this.#users(cred.username);
    if (password === undefined) return { ok: false, reason: 'unknown user' };

    const expected = computeDigestResponse({
      algorithm: this.algorithm,
      username: cred.username,
      realm: this.realm,
      password,
      nonce: cred.nonce,
      method,
      uri: cred.uri,
      qop: cred.qop as 'auth' | undefined,
      nc: cred.nc,
      cnonce: cred.cnonce,
    });
    if (!safeEqual(expected, cred.response.toLowerCase())) return { ok: false, reason: 'response mismatch' };
    // Only report stale for otherwise-correct credentials: RFC 7616 §3.3 lets the client retry without re-prompting.
    if (this.#now() - issuedAt > this.#nonceTtlMs) return { ok: false, stale: true, reason: 'nonce expired' };
    return { ok: true, username: cred.username };
  }

  #mac(ts: string): string {
    return createHmac('sha256', this.#secret).update(`${ts}:${this.realm}`).digest('base64url').slice(0, 22);
  }

  #makeNonce(nowMs: number): string {
    const ts = Math.floor(nowMs).toString(16);
    return `${ts}.${this.#mac(ts)}`;
  }

  #nonceTimestamp(nonce: string): number | undefined {
    const m = /^([0-9a-f]{1,16})\.([A-Za-z0-9_-]{22})$/.exec(nonce);
    if (!m) return undefined;
    if (!safeEqual(this.#mac(m[1]), m[2])) return undefined;
    return parseInt(m[1], 16);
  }
}

function safeEqual(a: string, b: string): boolean {
  const ba = Buffer.from(a);
  const bb = Buffer.from(b);
  return ba.length === bb.length && timingSafeEqual(ba, bb);
}
