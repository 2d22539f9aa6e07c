/**
 * SIP message model (RFC 3261 §7) used by the embedded engine.
 *
 * Headers are kept as an ordered list of raw (name, value) pairs: a B2BUA passes most headers through untouched, so
 * we only parse a header value (Via, From/To, CSeq, ...) when someone asks for it. Names compare case-insensitively and
 * compact forms (RFC 3261 §7.3.3) are expanded at parse time so lookups only ever use the long form.
 */

import type { SipTransportName } from '../port.ts';
import { splitHeaderList } from '../syntax/lex.ts';
import type { HeaderList } from '../port.ts';
import type { Via } from './via.ts';

export type { SipTransportName };
export { splitHeaderList };

/** Where a message came from or goes to. */
export interface SipEndpoint {
  transport: SipTransportName;
  address: string;
  port: number;
  /**
   * TLS only: the host name the peer's certificate must match (and SNI), when the address was resolved from a name
   * the message itself does not carry (an outbound proxy). Unset: tls.ts derives it from the request (tlsServerName).
   */
  serverName?: string;
}

/** Maps, not object literals: a header named `constructor` or `__proto__` must not find Object's properties. */
const COMPACT_FORMS = new Map<string, string>(
  Object.entries({
    v: 'Via',
    f: 'From',
    t: 'To',
    i: 'Call-ID',
    m: 'Contact',
    l: 'Content-Length',
    c: 'Content-Type',
    k: 'Supported',
    s: 'Subject',
    e: 'Content-Encoding',
    o: 'Event',
    r: 'Refer-To',
    u: 'Allow-Events',
    b: 'Referred-By',
    x: 'Session-Expires',
  }),
);

/** Canonical capitalisation for headers we emit ourselves; anything else keeps the case it arrived with. */
const CANONICAL = new Map<string, string>(
  [
    'Via',
    'From',
    'To',
    'Call-ID',
    'CSeq',
    'Contact',
    'Content-Length',
    'Content-Type',
    'Max-Forwards',
    'Route',
    'Record-Route',
    'Allow',
    'Supported',
    'Require',
    'Proxy-Require',
    'Unsupported',
    'User-Agent',
    'Server',
    'WWW-Authenticate',
    'Proxy-Authenticate',
    'Authorization',
    'Proxy-Authorization',
    'Retry-After',
    'Reason',
    'Session-Expires',
    'Min-SE',
    'Subject',
    'Event',
    'Refer-To',
    'Referred-By',
    'P-Asserted-Identity',
    'Diversion',
    'Content-Encoding',
    'Allow-Events',
    'Warning',
    'Timestamp',
    'Expires',
    'Accept',
    'Min-Expires',
  ].map((n): [string, string] => [n.toLowerCase(), n]),
);

/** Expand a compact header name and return the name to store (long form, canonical case when we know it). */
export function normalizeHeaderName(name: string): string {
  return nameOf(name).stored;
}

interface HeaderName {
  /** The name written: long form, canonical case when known, else as it arrived. */
  stored: string;
  /** Lower-cased `stored`: what lookups compare. */
  key: string;
}

/**
 * Names as written → their stored form and key. Lower-casing each name on every lookup and every comparison was
 * 4-5% of the engine's CPU (and a string to collect each time); real traffic uses a few dozen spellings, so they are
 * worked out once. Bounded: names off the wire are the peer's choice, and past the bound they are simply not cached.
 */
const NAME_CACHE = new Map<string, HeaderName>();
const NAME_CACHE_LIMIT = 2000;

function nameOf(name: string): HeaderName {
  const cached = NAME_CACHE.get(name);
  if (cached !== undefined) return cached;
  const lower = name.toLowerCase();
  const stored = COMPACT_FORMS.get(lower) ?? CANONICAL.get(lower) ?? name;
  const canonical = NAME_CACHE.get(stored); // share one key string per header, whatever the spelling
  const info = { stored, key: canonical?.key ?? stored.toLowerCase() };
  if (NAME_CACHE.size < NAME_CACHE_LIMIT) NAME_CACHE.set(name, info);
  return info;
}

/** The lower-cased long form of a header name: what SipHeaders compares (`keys()`). */
export function headerKey(name: string): string {
  return nameOf(name).key;
}

/**
 * Headers whose values may be written as a comma-separated list (RFC 3261 §7.3.1). Only these are split into
 * separate values by `getAll`; others (e.g. WWW-Authenticate, Date) contain commas as part of a single value.
 */
const LIST_HEADERS = new Set([
  'via',
  'contact',
  'route',
  'record-route',
  'allow',
  'supported',
  'require',
  'proxy-require',
  'unsupported',
  'accept',
  'accept-encoding',
  'accept-language',
  'allow-events',
  'content-encoding',
  'in-reply-to',
  'warning',
  'p-asserted-identity',
  'diversion',
  'reason',
]);

export function isListHeader(name: string): boolean {
  return LIST_HEADERS.has(headerKey(name));
}

/** Ordered, case-insensitive header list. */
export class SipHeaders {
  #entries: Array<[string, string]> = [];
  /** `headerKey` of each entry, same order: comparisons never lower-case anything. */
  #keys: string[] = [];

  constructor(init?: Iterable<[string, string]>) {
    if (init) for (const [n, v] of init) this.append(n, v);
  }

  /** First value of a header (raw, not split), or undefined. */
  get(name: string): string | undefined {
    const i = this.#keys.indexOf(headerKey(name));
    return i === -1 ? undefined : this.#entries[i][1];
  }

  /** Every value of a header, in order; list headers are split on top-level commas. */
  getAll(name: string): string[] {
    const key = headerKey(name);
    const out: string[] = [];
    const split = LIST_HEADERS.has(key);
    for (let i = this.#keys.indexOf(key); i !== -1; i = this.#keys.indexOf(key, i + 1)) {
      const v = this.#entries[i][1];
      if (split) out.push(...splitHeaderList(v));
      else out.push(v);
    }
    return out;
  }

  has(name: string): boolean {
    return this.#keys.includes(headerKey(name));
  }

  /** Append one header line. */
  append(name: string, value: string): this {
    const { stored, key } = nameOf(name);
    this.#entries.push([stored, value]);
    this.#keys.push(key);
    return this;
  }

  /** Insert a header line before all others of the same name (e.g. a new top Via). */
  prepend(name: string, value: string): this {
    const { stored, key } = nameOf(name);
    const idx = this.#keys.indexOf(key);
    if (idx === -1) {
      this.#entries.push([stored, value]);
      this.#keys.push(key);
    } else {
      this.#entries.splice(idx, 0, [stored, value]);
      this.#keys.splice(idx, 0, key);
    }
    return this;
  }

  /** Replace all lines of a header with one value (keeps the position of the first). */
  set(name: string, value: string): this {
    const { stored, key } = nameOf(name);
    const idx = this.#keys.indexOf(key);
    this.#keep((k, i) => i === idx || k !== key);
    if (idx === -1) return this.append(name, value);
    this.#entries[this.#keys.indexOf(key)] = [stored, value];
    return this;
  }

  /** Remove every line of a header. */
  delete(name: string): this {
    const key = headerKey(name);
    if (this.#keys.includes(key)) this.#keep((k) => k !== key);
    return this;
  }

  /** Remove the first value of a list header (e.g. pop the top Via), whether it is on its own line or comma-joined. */
  removeFirst(name: string): this {
    const idx = this.#keys.indexOf(headerKey(name));
    if (idx === -1) return this;
    const [n, v] = this.#entries[idx];
    const parts = splitHeaderList(v);
    if (parts.length > 1) this.#entries[idx] = [n, parts.slice(1).join(', ')];
    else {
      this.#entries.splice(idx, 1);
      this.#keys.splice(idx, 1);
    }
    return this;
  }

  /** All raw lines, in order (name, value). */
  lines(): HeaderList {
    return this.#entries;
  }

  /** The key (`headerKey`) of each line, in the order of `lines()`. */
  keys(): readonly string[] {
    return this.#keys;
  }

  clone(): SipHeaders {
    const h = new SipHeaders();
    h.#entries = this.#entries.map(([n, v]) => [n, v]);
    h.#keys = this.#keys.slice();
    return h;
  }

  /** Keep the lines `keep` accepts (new arrays: a `lines()` handed out earlier stays as it was). */
  #keep(keep: (key: string, index: number) => boolean): void {
    const entries: Array<[string, string]> = [];
    const keys: string[] = [];
    for (let i = 0; i < this.#keys.length; i++) {
      if (!keep(this.#keys[i], i)) continue;
      entries.push(this.#entries[i]);
      keys.push(this.#keys[i]);
    }
    this.#entries = entries;
    this.#keys = keys;
  }
}

interface SipMessageBase {
  /** SIP version string, normally "SIP/2.0". */
  version: string;
  headers: SipHeaders;
  /** Body bytes, passed through untouched (SDP etc.). Empty buffer when there is none. */
  body: Buffer;
  /** Set by the transport on received messages. */
  source?: SipEndpoint;
  /**
   * The top Via parsed, with the text it was parsed from (topVia in transaction-helpers.ts): the parser's check, the
   * transport's received/rport stamp and the transaction layer's matching share one parse. Stale once the text changes.
   */
  parsedVia?: { text: string; via: Via };
  /** Already encoded (serialize.ts encodedCopy): the transport sends these bytes as they are. */
  wire?: Buffer;
}

export interface SipRequest extends SipMessageBase {
  kind: 'request';
  method: string;
  /** Request-URI as text, exactly as received/sent. Use parseUri() for its parts. */
  uri: string;
}

export interface SipResponse extends SipMessageBase {
  kind: 'response';
  status: number;
  reason: string;
}

export type SipMessage = SipRequest | SipResponse;

/** The body of every message without one: Buffer.alloc(0) would be a Buffer and an ArrayBuffer per message. */
export const EMPTY_BODY: Buffer = Buffer.alloc(0);

export function createRequest(method: string, uri: string, headers?: SipHeaders, body?: Buffer): SipRequest {
  return {
    kind: 'request',
    method,
    uri,
    version: 'SIP/2.0',
    headers: headers ?? new SipHeaders(),
    body: body ?? EMPTY_BODY,
  };
}

export function createResponse(status: number, reason: string, headers?: SipHeaders, body?: Buffer): SipResponse {
  return {
    kind: 'response',
    status,
    reason,
    version: 'SIP/2.0',
    headers: headers ?? new SipHeaders(),
    body: body ?? EMPTY_BODY,
  };
}

/** Default reason phrases (RFC 3261 §21 and common extensions). */
export const REASON_PHRASES: Record<number, string> = {
  100: 'Trying',
  180: 'Ringing',
  181: 'Call Is Being Forwarded',
  182: 'Queued',
  183: 'Session Progress',
  200: 'OK',
  202: 'Accepted',
  300: 'Multiple Choices',
  301: 'Moved Permanently',
  302: 'Moved Temporarily',
  400: 'Bad Request',
  401: 'Unauthorized',
  402: 'Payment Required',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  407: 'Proxy Authentication Required',
  408: 'Request Timeout',
  410: 'Gone',
  413: 'Request Entity Too Large',
  414: 'Request-URI Too Long',
  415: 'Unsupported Media Type',
  416: 'Unsupported URI Scheme',
  420: 'Bad Extension',
  421: 'Extension Required',
  422: 'Session Interval Too Small',
  423: 'Interval Too Brief',
  480: 'Temporarily Unavailable',
  481: 'Call/Transaction Does Not Exist',
  482: 'Loop Detected',
  483: 'Too Many Hops',
  484: 'Address Incomplete',
  485: 'Ambiguous',
  486: 'Busy Here',
  487: 'Request Terminated',
  488: 'Not Acceptable Here',
  491: 'Request Pending',
  493: 'Undecipherable',
  500: 'Server Internal Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Server Time-out',
  505: 'Version Not Supported',
  513: 'Message Too Large',
  600: 'Busy Everywhere',
  603: 'Decline',
  604: 'Does Not Exist Anywhere',
  606: 'Not Acceptable',
};

export function reasonPhrase(status: number): string {
  return REASON_PHRASES[status] ?? (status < 200 ? 'Provisional' : status < 300 ? 'OK' : 'Error');
}
