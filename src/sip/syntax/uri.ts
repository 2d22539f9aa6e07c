/**
 * SIP / SIPS / tel URI parsing (RFC 3261 §19.1, §25.1; RFC 3966 for tel).
 *
 * The user part is kept exactly as written (escapes included) because a B2BUA forwards it and comparing or re-encoding
 * it would change what the far end sees. Param names are lowercased (they compare case-insensitively); values are
 * kept as written.
 */
import { SipParseError } from './errors.ts';
import { emptyRecord, parseDecimal } from './lex.ts';

export interface SipUri {
  /** Lowercased scheme: "sip", "sips", "tel", or anything else kept opaque. */
  scheme: string;
  /** User part as written (escapes preserved). For tel: URIs this is the telephone-subscriber number. */
  user?: string;
  password?: string;
  /** Host as written; IPv6 references keep their brackets. Empty for tel: URIs. For unknown schemes: the whole
   * scheme-specific part, kept opaque. */
  host: string;
  port?: number;
  params: Record<string, string | null>;
  headers: Record<string, string>;
}

const HEX = '0123456789abcdefABCDEF';
// RFC 3261: unreserved marks and user-unreserved / password extras.
const USER_EXTRA = "-_.!~*'()&=+$,;?/";
const PASSWORD_EXTRA = "-_.!~*'()&=+$,";

function isAlnum(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** True when every character is alphanumeric, in `extra`, or a well-formed %XX escape. */
function validEscaped(s: string, extra: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const ch = s[i];
    if (ch === '%') {
      if (!HEX.includes(s[i + 1] ?? 'x') || !HEX.includes(s[i + 2] ?? 'x')) return false;
      i += 2;
    } else if (!isAlnum(ch.charCodeAt(0)) && !extra.includes(ch)) return false;
  }
  return true;
}

function validHost(h: string): boolean {
  if (h.length === 0) return false;
  if (h[0] === '[') {
    if (h.length < 4 || h[h.length - 1] !== ']') return false;
    for (let i = 1; i < h.length - 1; i++) {
      const ch = h[i];
      if (!HEX.includes(ch) && ch !== ':' && ch !== '.') return false;
    }
    return h.includes(':');
  }
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    if (!isAlnum(c) && h[i] !== '-' && h[i] !== '.' && h[i] !== '_') return false;
  }
  return true;
}

/** Characters never allowed anywhere in a URI as it appears in a SIP message. */
function hasForbiddenChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c /* < */ || c === 0x3e /* > */ || c === 0x22 /* " */) return true;
  }
  return false;
}

function parseUriParams(s: string): Record<string, string | null> {
  const params = emptyRecord<string | null>();
  if (s.length === 0) return params;
  for (const part of s.split(';')) {
    if (part.length === 0) continue; // tolerate ";;" and a trailing ";"
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).toLowerCase();
    if (name.length === 0) throw new SipParseError('bad URI parameter', part);
    params[name] = eq === -1 ? null : part.slice(eq + 1);
  }
  return params;
}

function parseUriHeaders(s: string): Record<string, string> {
  const headers = emptyRecord<string>();
  for (const part of s.split('&')) {
    if (part.length === 0) continue;
    const eq = part.indexOf('=');
    const name = eq === -1 ? part : part.slice(0, eq);
    if (name.length === 0) throw new SipParseError('bad URI header', part);
    headers[name] = eq === -1 ? '' : part.slice(eq + 1);
  }
  return headers;
}

function schemeOk(s: string): boolean {
  if (s.length === 0) return false;
  const c0 = s.charCodeAt(0);
  if (!((c0 >= 0x41 && c0 <= 0x5a) || (c0 >= 0x61 && c0 <= 0x7a))) return false;
  for (let i = 1; i < s.length; i++) {
    if (!isAlnum(s.charCodeAt(i)) && !'+-.'.includes(s[i])) return false;
  }
  return true;
}

export function parseUri(text: string): SipUri {
  if (typeof text !== 'string' || text.length === 0) throw new SipParseError('empty URI');
  if (hasForbiddenChar(text)) throw new SipParseError('invalid character in URI');
  const colon = text.indexOf(':');
  if (colon <= 0 || !schemeOk(text.slice(0, colon))) throw new SipParseError('bad URI scheme');
  const scheme = text.slice(0, colon).toLowerCase();
  const rest = text.slice(colon + 1);
  if (rest.length === 0) throw new SipParseError('empty URI');
  if (scheme === 'sip' || scheme === 'sips') return parseSipRest(scheme, rest);
  if (scheme === 'tel') return parseTelRest(rest);
  return { scheme, host: rest, params: emptyRecord(), headers: emptyRecord() };
}

function parseTelRest(rest: string): SipUri {
  const semi = rest.indexOf(';');
  const number = semi === -1 ? rest : rest.slice(0, semi);
  if (number.length === 0 || !validEscaped(number, "-_.!~*'()+*#/&=$,?:")) throw new SipParseError('bad tel number');
  return {
    scheme: 'tel',
    user: number,
    host: '',
    params: parseUriParams(semi === -1 ? '' : rest.slice(semi + 1)),
    headers: emptyRecord(),
  };
}

function parseSipRest(scheme: string, rest: string): SipUri {
  const uri: SipUri = { scheme, host: '', params: emptyRecord(), headers: emptyRecord() };
  // '@' cannot appear unescaped in userinfo, hostport or params, so the first one ends the userinfo.
  const at = rest.indexOf('@');
  let i = 0;
  if (at !== -1) {
    const userinfo = rest.slice(0, at);
    const pc = userinfo.indexOf(':');
    const user = pc === -1 ? userinfo : userinfo.slice(0, pc);
    if (user.length === 0 || !validEscaped(user, USER_EXTRA)) throw new SipParseError('bad URI user part');
    uri.user = user;
    if (pc !== -1) {
      const password = userinfo.slice(pc + 1);
      if (!validEscaped(password, PASSWORD_EXTRA)) throw new SipParseError('bad URI password');
      uri.password = password;
    }
    i = at + 1;
  }
  let hostEnd: number;
  if (rest[i] === '[') {
    const close = rest.indexOf(']', i);
    if (close === -1) throw new SipParseError('bad URI host', 'unterminated IPv6 reference');
    hostEnd = close + 1;
  } else {
    hostEnd = i;
    while (hostEnd < rest.length && !':;?'.includes(rest[hostEnd])) hostEnd++;
  }
  const host = rest.slice(i, hostEnd);
  if (!validHost(host)) throw new SipParseError('bad URI host', host);
  uri.host = host;
  i = hostEnd;
  if (rest[i] === ':') {
    let pe = i + 1;
    while (pe < rest.length && rest[pe] !== ';' && rest[pe] !== '?') pe++;
    const port = parseDecimal(rest.slice(i + 1, pe), 5);
    if (port === undefined || port > 65535) throw new SipParseError('bad URI port');
    uri.port = port;
    i = pe;
  }
  const q = rest.indexOf('?', i);
  if (rest[i] === ';') uri.params = parseUriParams(rest.slice(i + 1, q === -1 ? rest.length : q));
  else if (i < rest.length && rest[i] !== '?') throw new SipParseError('bad URI', 'unexpected character after host');
  if (q !== -1) uri.headers = parseUriHeaders(rest.slice(q + 1));
  return uri;
}

/** `;name` / `;name=value` list, used for URI params and header params alike. */
export function formatParams(params: Record<string, string | null>): string {
  let out = '';
  for (const [k, v] of Object.entries(params)) out += v === null ? `;${k}` : `;${k}=${v}`;
  return out;
}

export function formatUri(u: SipUri): string {
  if (u.scheme === 'tel') return `tel:${u.user ?? u.host}${formatParams(u.params)}`;
  if (u.scheme !== 'sip' && u.scheme !== 'sips') return `${u.scheme}:${u.host}`;
  let out = `${u.scheme}:`;
  if (u.user !== undefined) out += u.password === undefined ? `${u.user}@` : `${u.user}:${u.password}@`;
  out += u.host;
  if (u.port !== undefined) out += `:${u.port}`;
  out += formatParams(u.params);
  const hs = Object.entries(u.headers);
  if (hs.length) out += `?${hs.map(([k, v]) => `${k}=${v}`).join('&')}`;
  return out;
}

/** An IPv6 reference without its brackets (`[::1]` → `::1`); other hosts unchanged. */
export function stripBrackets(host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}
