/** Via header values (RFC 3261 §20.42, §18.2.2; rport from RFC 3581). One via-parm per call. */
import { parseGenericParams } from '../syntax/address.ts';
import { SipParseError } from '../syntax/errors.ts';
import { parseDecimal, skipWs, tokenEnd } from '../syntax/lex.ts';
import net from 'node:net';
import { formatParams, stripBrackets } from '../syntax/uri.ts';
import type { SipEndpoint, SipRequest } from './message.ts';

export interface Via {
  /** Protocol name and version, e.g. "SIP/2.0". */
  protocol: string;
  /** Upper-cased transport: UDP, TCP, TLS, WS, ... */
  transport: string;
  /** sent-by host as written; IPv6 references keep their brackets. */
  host: string;
  port?: number;
  /** Names lowercased; flag parameters (rport) have value null. */
  params: Record<string, string | null>;
}

function validViaHost(h: string): boolean {
  if (h[0] === '[') {
    if (h.length < 4 || h[h.length - 1] !== ']') return false;
    for (let i = 1; i < h.length - 1; i++) if (!'0123456789abcdefABCDEF:.'.includes(h[i])) return false;
    return true;
  }
  if (h.length === 0) return false;
  for (let i = 0; i < h.length; i++) {
    const c = h.charCodeAt(i);
    const alnum = (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
    if (!alnum && h[i] !== '-' && h[i] !== '.' && h[i] !== '_') return false;
  }
  return true;
}

export function parseVia(value: string): Via {
  const s = value;
  let i = skipWs(s, 0);
  const parts: string[] = [];
  for (let n = 0; n < 3; n++) {
    if (n > 0) {
      if (s[i] !== '/') throw new SipParseError('bad Via', 'expected /');
      i = skipWs(s, i + 1);
    }
    const end = tokenEnd(s, i);
    if (end === i) throw new SipParseError('bad Via', 'expected sent-protocol token');
    parts.push(s.slice(i, end));
    i = skipWs(s, end);
  }
  if (i === s.length) throw new SipParseError('bad Via', 'missing sent-by');
  let hostEnd: number;
  if (s[i] === '[') {
    const close = s.indexOf(']', i);
    if (close === -1) throw new SipParseError('bad Via', 'unterminated IPv6 reference');
    hostEnd = close + 1;
  } else {
    hostEnd = i;
    while (hostEnd < s.length && !' \t\r\n:;,'.includes(s[hostEnd])) hostEnd++;
  }
  const host = s.slice(i, hostEnd);
  if (!validViaHost(host)) throw new SipParseError('bad Via', 'bad sent-by host');
  i = skipWs(s, hostEnd);
  let port: number | undefined;
  if (s[i] === ':') {
    i = skipWs(s, i + 1);
    let pe = i;
    while (pe < s.length && s.charCodeAt(pe) >= 0x30 && s.charCodeAt(pe) <= 0x39) pe++;
    port = parseDecimal(s.slice(i, pe), 5);
    if (port === undefined || port > 65535) throw new SipParseError('bad Via', 'bad port');
    i = pe;
  }
  const params = parseGenericParams(s, i);
  const via: Via = {
    protocol: `${parts[0].toUpperCase()}/${parts[1]}`,
    transport: parts[2].toUpperCase(),
    host,
    params,
  };
  if (port !== undefined) via.port = port;
  return via;
}

export function formatVia(v: Via): string {
  return `${v.protocol}/${v.transport} ${v.host}${v.port !== undefined ? `:${v.port}` : ''}${formatParams(v.params)}`;
}

export function viaBranch(v: Via): string | undefined {
  const b = v.params.branch;
  return typeof b === 'string' ? b : undefined;
}

/** undefined: no rport; null: rport flag without a value (or an unusable value); number: the filled-in port. */
export function viaRport(v: Via): number | null | undefined {
  if (!('rport' in v.params)) return undefined;
  const r = v.params.rport;
  if (r === null || r === undefined) return null;
  const n = parseDecimal(r, 5);
  return n === undefined || n > 65535 ? null : n;
}

/** "::ffff:1.2.3.4" → "1.2.3.4", so one peer has one key whichever way the dual-stack socket reports it. */
export function normalizeAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

/** §18.2.1 / RFC 3581: record where the request really came from in its top Via. False if the Via is unusable. */
export function stampReceived(req: SipRequest, source: SipEndpoint): boolean {
  const text = req.headers.getAll('Via')[0];
  if (text === undefined) return false;
  let via: Via;
  try {
    // The parser's parse when it is still current (a copy: the cached one is read-only), else a parse of our own.
    const cached = req.parsedVia?.text === text ? req.parsedVia.via : parseVia(text);
    via = { ...cached, params: { ...cached.params } };
  } catch {
    return false;
  }
  const hasRport = 'rport' in via.params;
  let changed = false;
  // RFC 3581 §4: with rport, received is added even when the host already matches.
  if (hasRport || normalizeAddress(stripBrackets(via.host)).toLowerCase() !== source.address.toLowerCase()) {
    via.params.received = source.address;
    changed = true;
  }
  if (hasRport && (via.params.rport === null || via.params.rport === '')) {
    via.params.rport = String(source.port);
    changed = true;
  }
  if (changed) {
    const stamped = formatVia(via);
    req.headers.removeFirst('Via');
    req.headers.prepend('Via', stamped);
    req.parsedVia = { text: stamped, via };
  } else req.parsedVia = { text, via };
  return true;
}
