/**
 * name-addr / addr-spec values (RFC 3261 §20.10, §25.1) as used by From, To, Contact, Route, Record-Route and
 * P-Asserted-Identity, plus the generic `;name=value` header-parameter scanner shared with Via.
 */
import { SipParseError } from './errors.ts';
import { emptyRecord, isTokenChar, isWs, quotedEnd, skipWs, tokenEnd } from './lex.ts';
import { formatParams, formatUri, parseUri } from './uri.ts';
import type { SipUri } from './uri.ts';

export interface NameAddr {
  /** Unquoted/unescaped display name; undefined when absent. */
  displayName?: string;
  uri: SipUri;
  /** The URI text exactly as it appeared. */
  rawUri: string;
  /** Header parameters after the URI (tag, expires, q, ...). Names lowercased; quoted values keep their quotes. */
  params: Record<string, string | null>;
}

/** Position of one header parameter inside the text it was scanned from (lets withTag edit in place). */
export interface ParamSpan {
  name: string;
  value: string | null;
  /** Index just past the name. */
  nameEnd: number;
  /** Index of the first value character, or -1 for a flag parameter. */
  valueStart: number;
  /** Index just past the value (or the name for a flag). */
  end: number;
}

/** Scan `*( SEMI generic-param )` from index `from` to the end of `s`. Throws on anything else. */
export function scanParams(s: string, from: number): ParamSpan[] {
  const spans: ParamSpan[] = [];
  let i = skipWs(s, from);
  while (i < s.length) {
    if (s[i] !== ';') throw new SipParseError('unexpected character after parameters', s[i]);
    i = skipWs(s, i + 1);
    const nameStart = i;
    i = tokenEnd(s, i);
    if (i === nameStart) throw new SipParseError('empty parameter name');
    const name = s.slice(nameStart, i).toLowerCase();
    const nameEnd = i;
    i = skipWs(s, i);
    if (s[i] !== '=') {
      spans.push({ name, value: null, nameEnd, valueStart: -1, end: nameEnd });
      continue;
    }
    i = skipWs(s, i + 1);
    const valueStart = i;
    if (s[i] === '"') {
      i = quotedEnd(s, i);
      if (i === -1) throw new SipParseError('unterminated quoted parameter value');
    } else {
      // gen-value = token / host / quoted-string; hosts add ':' '[' ']' to the token characters.
      while (i < s.length && (isTokenChar(s[i]) || s[i] === ':' || s[i] === '[' || s[i] === ']')) i++;
    }
    if (i === valueStart) throw new SipParseError('empty parameter value', name);
    spans.push({ name, value: s.slice(valueStart, i), nameEnd, valueStart, end: i });
    i = skipWs(s, i);
  }
  return spans;
}

/** `;a=1;b` (from index `from`) as a record. Later duplicates win. */
export function parseGenericParams(s: string, from = 0): Record<string, string | null> {
  const params = emptyRecord<string | null>();
  for (const p of scanParams(s, from)) params[p.name] = p.value;
  return params;
}

function unquote(q: string): string {
  let out = '';
  for (let i = 1; i < q.length - 1; i++) {
    if (q[i] === '\\' && i + 1 < q.length - 1) i++;
    out += q[i];
  }
  return out;
}

function validUnquotedDisplayName(dn: string): boolean {
  // *(token LWS); UTF-8 is tolerated because real phones send it unquoted.
  for (let i = 0; i < dn.length; i++) {
    const ch = dn[i];
    if (!isTokenChar(ch) && !isWs(ch) && ch.charCodeAt(0) < 0x80) return false;
  }
  return true;
}

export function parseNameAddr(text: string): NameAddr {
  const s = text;
  const i = skipWs(s, 0);
  if (i >= s.length) throw new SipParseError('empty address');
  let displayName: string | undefined;
  let lt: number;
  if (s[i] === '"') {
    const end = quotedEnd(s, i);
    if (end === -1) throw new SipParseError('unterminated quoted display name');
    displayName = unquote(s.slice(i, end));
    lt = skipWs(s, end);
    if (s[lt] !== '<') throw new SipParseError('expected < after display name');
  } else {
    lt = s.indexOf('<', i);
    if (lt === -1) return parseAddrSpec(s, i);
    const dn = s.slice(i, lt).trim();
    if (!validUnquotedDisplayName(dn)) throw new SipParseError('bad display name');
    if (dn.length) displayName = dn;
  }
  const gt = s.indexOf('>', lt + 1);
  if (gt === -1) throw new SipParseError('unterminated <URI>');
  const rawUri = s.slice(lt + 1, gt);
  const uri = parseUri(rawUri);
  const params = parseGenericParams(s, gt + 1);
  return displayName === undefined ? { uri, rawUri, params } : { displayName, uri, rawUri, params };
}

function parseAddrSpec(s: string, start: number): NameAddr {
  // §20.10: without <>, every ';' starts a header parameter, and a URI with '?' or ',' is not allowed.
  const semi = s.indexOf(';', start);
  const rawUri = s.slice(start, semi === -1 ? s.length : semi).trimEnd();
  if (rawUri.includes('?') || rawUri.includes(',')) throw new SipParseError('URI with ? or , must be enclosed in <>');
  const uri = parseUri(rawUri);
  const params = semi === -1 ? emptyRecord<string | null>() : parseGenericParams(s, semi);
  return { uri, rawUri, params };
}

/** A display name as a quoted-string, with `"` and `\` escaped (RFC 3261 §25.1). */
export function quoteDisplayName(dn: string): string {
  let out = '"';
  for (const ch of dn) out += ch === '"' || ch === '\\' ? `\\${ch}` : ch;
  return `${out}"`;
}

export function formatNameAddr(a: NameAddr): string {
  const dn = a.displayName !== undefined && a.displayName !== '' ? `${quoteDisplayName(a.displayName)} ` : '';
  return `${dn}<${formatUri(a.uri)}>${formatParams(a.params)}`;
}

/**
 * Tags of the From/To values seen last. One message has its tags asked for several times (the parser's check,
 * dialog matching, the transaction, the UA), each a full name-addr and URI parse. A small ring compared by value:
 * the values asked for again are the ones of the message at hand, and a Map churned by a new Call-ID every call
 * cost more to keep up than it saved.
 */
const TAG_MEMO_SLOTS = 16;
const memoValues: string[] = new Array<string>(TAG_MEMO_SLOTS).fill('');
const memoTags: Array<string | undefined> = new Array<string | undefined>(TAG_MEMO_SLOTS).fill(undefined);
let memoNext = 0;

function rememberTag(headerValue: string, tag: string | undefined): void {
  memoValues[memoNext] = headerValue;
  memoTags[memoNext] = tag;
  memoNext = (memoNext + 1) % TAG_MEMO_SLOTS;
}

function tagOf(addr: NameAddr): string | undefined {
  const tag = addr.params.tag;
  return typeof tag === 'string' ? tag : undefined;
}

export function getTag(headerValue: string): string | undefined {
  // The ring starts as '' → undefined: right too, '' never parses (empty address).
  const slot = memoValues.indexOf(headerValue);
  if (slot !== -1) return memoTags[slot];
  let tag: string | undefined;
  try {
    tag = tagOf(parseNameAddr(headerValue));
  } catch {
    tag = undefined;
  }
  rememberTag(headerValue, tag);
  return tag;
}

/** parseNameAddr, also remembered for getTag: for the parser, which checks every From and To anyway. */
export function parseNameAddrWithTag(headerValue: string): NameAddr {
  const addr = parseNameAddr(headerValue);
  rememberTag(headerValue, tagOf(addr));
  return addr;
}

/** Index where the header parameters start (just past '>' or at the first ';' of an addr-spec). */
function paramsStart(s: string): number {
  let i = skipWs(s, 0);
  if (s[i] === '"') {
    const end = quotedEnd(s, i);
    if (end === -1) return s.length;
    i = end;
  }
  const lt = s.indexOf('<', i);
  if (lt !== -1) {
    const gt = s.indexOf('>', lt + 1);
    return gt === -1 ? s.length : gt + 1;
  }
  const semi = s.indexOf(';', i);
  return semi === -1 ? s.length : semi;
}

/** Add or replace `;tag=` leaving every other character of the header value as it was. */
export function withTag(headerValue: string, tag: string): string {
  const s = headerValue;
  let spans: ParamSpan[] = [];
  try {
    spans = scanParams(s, paramsStart(s));
  } catch {
    spans = [];
  }
  const existing = spans.find((p) => p.name === 'tag');
  if (!existing) return `${s.trimEnd()};tag=${tag}`;
  if (existing.valueStart === -1) return `${s.slice(0, existing.nameEnd)}=${tag}${s.slice(existing.end)}`;
  return `${s.slice(0, existing.valueStart)}${tag}${s.slice(existing.end)}`;
}
