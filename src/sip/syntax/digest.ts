/**
 * SIP HTTP-Digest authentication (RFC 3261 §22.4, RFC 2617, RFC 7616, RFC 8760).
 *
 * Parse the challenges a Telnyx/PBX peer sends and build the matching Authorization / Proxy-Authorization value;
 * compute and parse digest responses. The server side (challenging the PBX) is in digest-server.ts.
 */
import { createHash, randomBytes } from 'node:crypto';

export type DigestAlgorithm = 'MD5' | 'MD5-sess' | 'SHA-256' | 'SHA-256-sess';

export interface DigestChallenge {
  realm: string;
  nonce: string;
  /** Canonical spelling when supported (see `isSupportedAlgorithm`), otherwise the raw value offered. */
  algorithm: string;
  /** Lower-cased qop options offered; empty means RFC 2069 compatibility mode. */
  qop: string[];
  opaque?: string;
  stale: boolean;
  domain?: string;
  /** Every auth-param as received, names lower-cased, so callers can see extensions we do not interpret. */
  params: Record<string, string>;
}

export interface DigestCredentials {
  username: string;
  realm: string;
  nonce: string;
  uri: string;
  response: string;
  algorithm: string;
  qop?: string;
  nc?: string;
  cnonce?: string;
  opaque?: string;
  params: Record<string, string>;
}

const ALGORITHMS: Record<string, DigestAlgorithm> = {
  md5: 'MD5',
  'md5-sess': 'MD5-sess',
  'sha-256': 'SHA-256',
  'sha-256-sess': 'SHA-256-sess',
};

/** Lower rank wins: RFC 7616 §3.7 / RFC 8760 want SHA-256 whenever the peer offers it. */
const PREFERENCE: Record<DigestAlgorithm, number> = { 'SHA-256': 0, 'SHA-256-sess': 1, MD5: 2, 'MD5-sess': 3 };

export function isSupportedAlgorithm(alg: string): alg is DigestAlgorithm {
  return Object.hasOwn(PREFERENCE, alg);
}

function normalizeAlgorithm(raw: string | undefined): string {
  if (raw === undefined || raw === '') return 'MD5'; // RFC 2617 §3.2.1: absent means MD5
  return ALGORITHMS[raw.toLowerCase()] ?? raw;
}

// ---------------------------------------------------------------------------------------------------------------
// Header tokenizer

interface RawAuth {
  scheme: string;
  params: Map<string, string>;
}

const TOKEN_CHARS = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]$/;
const isWs = (c: string | undefined): boolean => c === ' ' || c === '\t' || c === '\r' || c === '\n';

/**
 * Split a WWW-Authenticate-style value into (scheme, params) entries. One header may carry several challenges
 * (`Digest a=1, Digest a=2`), so a bare token not followed by `=` starts a new challenge. Unquoted values are read
 * leniently up to the next comma/whitespace because real PBXs send things like `nonce=abc/def+ghi`.
 */
function parseAuthHeader(s: string): RawAuth[] {
  const out: RawAuth[] = [];
  let cur: RawAuth | undefined;
  let i = 0;
  const n = s.length;
  const skipWs = (): void => {
    while (i < n && isWs(s[i])) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TOKEN_CHARS.test(s[i])) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let val = '';
    while (i < n) {
      const c = s[i];
      if (c === '\\' && i + 1 < n) {
        val += s[i + 1];
        i += 2;
      } else if (c === '"') {
        i++;
        return val;
      } else {
        val += c;
        i++;
      }
    }
    throw new Error('unterminated quoted string');
  };

  for (;;) {
    while (i < n && (isWs(s[i]) || s[i] === ',')) i++;
    if (i >= n) break;
    const tok = readToken();
    if (!tok) throw new Error(`unexpected character ${JSON.stringify(s[i])} at offset ${i}`);
    skipWs();
    if (s[i] === '=') {
      if (!cur) throw new Error('auth-param before scheme');
      i++;
      skipWs();
      let val: string;
      if (s[i] === '"') {
        val = readQuoted();
      } else {
        const start = i;
        while (i < n && s[i] !== ',' && !isWs(s[i])) i++;
        val = s.slice(start, i);
      }
      cur.params.set(tok.toLowerCase(), val);
    } else {
      cur = { scheme: tok, params: new Map() };
      out.push(cur);
    }
  }
  return out;
}

function challengeFromRaw(raw: RawAuth): DigestChallenge {
  const p = raw.params;
  const realm = p.get('realm');
  const nonce = p.get('nonce');
  if (realm === undefined) throw new Error('Digest challenge without realm');
  if (nonce === undefined) throw new Error('Digest challenge without nonce');
  const qopRaw = p.get('qop');
  return {
    realm,
    nonce,
    algorithm: normalizeAlgorithm(p.get('algorithm')),
    qop:
      qopRaw === undefined
        ? []
        : qopRaw
            .split(',')
            .map((q) => q.trim().toLowerCase())
            .filter(Boolean),
    opaque: p.get('opaque'),
    stale: (p.get('stale') ?? '').toLowerCase() === 'true',
    domain: p.get('domain'),
    params: Object.fromEntries(p),
  };
}

/** Every Digest challenge in one header value (other schemes such as Basic are skipped). */
export function parseChallenges(value: string): DigestChallenge[] {
  return parseAuthHeader(value)
    .filter((r) => r.scheme.toLowerCase() === 'digest')
    .map(challengeFromRaw);
}

/** The first Digest challenge in a header value; throws if there is none or it is malformed. */
export function parseChallenge(value: string): DigestChallenge {
  const first = parseAuthHeader(value).find((r) => r.scheme.toLowerCase() === 'digest');
  if (!first) throw new Error('no Digest challenge in header value');
  return challengeFromRaw(first);
}

/**
 * Choose the challenge to answer among all WWW-/Proxy-Authenticate values of a response: the strongest supported
 * algorithm wins, ties go to the one offered first (RFC 8760 §2.4 lists challenges in server preference order).
 * Malformed or unsupported challenges are ignored rather than failing the whole response.
 */
export function pickChallenge(values: string[]): DigestChallenge | undefined {
  let best: DigestChallenge | undefined;
  for (const value of values) {
    let parsed: DigestChallenge[];
    try {
      parsed = parseAuthHeader(value).flatMap((r) => {
        if (r.scheme.toLowerCase() !== 'digest') return [];
        try {
          return [challengeFromRaw(r)];
        } catch {
          return [];
        }
      });
    } catch {
      continue;
    }
    for (const c of parsed) {
      if (!isSupportedAlgorithm(c.algorithm)) continue;
      if (!best || PREFERENCE[c.algorithm] < PREFERENCE[best.algorithm as DigestAlgorithm]) best = c;
    }
  }
  return best;
}

/** Parse an Authorization / Proxy-Authorization value; throws when it is not a usable Digest credential. */
export function parseAuthorization(value: string): DigestCredentials {
  const raw = parseAuthHeader(value)[0];
  if (raw?.scheme.toLowerCase() !== 'digest') throw new Error('not a Digest credential');
  const p = raw.params;
  const need = (name: string): string => {
    const v = p.get(name);
    if (v === undefined) throw new Error(`Digest credential without ${name}`);
    return v;
  };
  return {
    username: need('username'),
    realm: need('realm'),
    nonce: need('nonce'),
    uri: need('uri'),
    response: need('response'),
    algorithm: normalizeAlgorithm(p.get('algorithm')),
    qop: p.get('qop')?.toLowerCase(),
    nc: p.get('nc'),
    cnonce: p.get('cnonce'),
    opaque: p.get('opaque'),
    params: Object.fromEntries(p),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Response computation

export interface DigestResponseInput {
  algorithm: DigestAlgorithm;
  username: string;
  realm: string;
  password: string;
  nonce: string;
  method: string;
  uri: string;
  qop?: 'auth' | 'auth-int';
  nc?: string;
  cnonce?: string;
  body?: Buffer;
}

/** RFC 7616 §3.4.1-3.4.3 `response` value (lower-case hex). */
export function computeDigestResponse(o: DigestResponseInput): string {
  const hashName = o.algorithm.startsWith('SHA-256') ? 'sha256' : 'md5';
  const h = (data: string | Buffer): string => createHash(hashName).update(data).digest('hex');
  let ha1 = h(`${o.username}:${o.realm}:${o.password}`);
  if (o.algorithm.endsWith('-sess')) ha1 = h(`${ha1}:${o.nonce}:${o.cnonce ?? ''}`);
  const ha2 =
    o.qop === 'auth-int' ? h(`${o.method}:${o.uri}:${h(o.body ?? Buffer.alloc(0))}`) : h(`${o.method}:${o.uri}`);
  if (!o.qop) return h(`${ha1}:${o.nonce}:${ha2}`);
  return h(`${ha1}:${o.nonce}:${o.nc ?? ''}:${o.cnonce ?? ''}:${o.qop}:${ha2}`);
}

export const quote = (v: string): string => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

export interface BuildAuthorizationOptions {
  challenge: DigestChallenge;
  method: string;
  uri: string;
  username: string;
  password: string;
  nc?: number;
  cnonce?: string;
  body?: Buffer;
}

/** Full Authorization / Proxy-Authorization header value answering `challenge`. */
export function buildAuthorization(opts: BuildAuthorizationOptions): string {
  const { challenge: c } = opts;
  if (!isSupportedAlgorithm(c.algorithm)) throw new Error(`unsupported digest algorithm ${c.algorithm}`);
  let qop: 'auth' | 'auth-int' | undefined;
  if (c.qop.includes('auth')) qop = 'auth';
  else if (c.qop.length === 1 && c.qop[0] === 'auth-int') qop = 'auth-int';
  else if (c.qop.length > 0) throw new Error(`unsupported qop ${c.qop.join(',')}`);

  // -sess needs a cnonce even in RFC 2069 mode; otherwise cnonce/nc only accompany qop (RFC 2617 §3.2.2).
  const needCnonce = qop !== undefined || c.algorithm.endsWith('-sess');
  const cnonce = needCnonce ? (opts.cnonce ?? randomBytes(16).toString('hex')) : undefined;
  const nc = qop ? (opts.nc ?? 1).toString(16).padStart(8, '0') : undefined;
  const response = computeDigestResponse({
    algorithm: c.algorithm,
    username: opts.username,
    realm: c.realm,
    password: opts.password,
    nonce: c.nonce,
    method: opts.method,
    uri: opts.uri,
    qop,
    nc,
    cnonce,
    body: opts.body,
  });

  const parts = [
    `username=${quote(opts.username)}`,
    `realm=${quote(c.realm)}`,
    `nonce=${quote(c.nonce)}`,
    `uri=${quote(opts.uri)}`,
    `response=${quote(response)}`,
    `algorithm=${c.algorithm}`,
  ];
  if (qop) parts.push(`qop=${qop}`, `nc=${nc}`);
  if (cnonce !== undefined) parts.push(`cnonce=${quote(cnonce)}`);
  if (c.opaque !== undefined) parts.push(`opaque=${quote(c.opaque)}`);
  return `Digest ${parts.join(', ')}`;
}
