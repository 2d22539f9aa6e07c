/**
 * SIP message parser (RFC 3261 §7) for one complete message: a UDP datagram or a buffer framed by StreamFramer.
 *
 * It never throws and only uses forward index scanning, so hostile input costs time linear in its size. When a
 * request is broken but still carries what a 400 needs, the best-effort request is returned as `partial` so the
 * transport layer can answer instead of dropping it silently.
 */
import { parseNameAddrWithTag } from '../syntax/address.ts';
import { parseCSeq } from './cseq.ts';
import { isToken, parseDecimal } from '../syntax/lex.ts';
import { SipHeaders, createRequest, createResponse, headerKey, normalizeHeaderName } from './message.ts';
import type { SipMessage, SipRequest } from './message.ts';
import { parseUri } from '../syntax/uri.ts';
import { parseVia, type Via } from './via.ts';

export { StreamFramer } from './framer.ts';
export type { FramerResult, StreamFramerOptions } from './framer.ts';

export type ParseResult = { ok: true; message: SipMessage } | { ok: false; error: string; partial?: SipRequest };

export interface ParseOptions {
  /** Largest accepted message in bytes (default 65535). */
  maxSize?: number;
}

export const DEFAULT_MAX_MESSAGE_SIZE = 65535;

const MANDATORY = ['Via', 'From', 'To', 'Call-ID', 'CSeq'] as const;
const MANDATORY_KEYS = MANDATORY.map(headerKey);
/** Headers that must not appear more than once (RFC 4475 §3.1.2.19 "multi01"). */
const SINGLE_VALUED = new Set(['from', 'to', 'call-id', 'cseq', 'max-forwards', 'content-length']);
const EMPTY = Buffer.alloc(0);

type StartLine =
  | { kind: 'request'; method: string; uri: string }
  | { kind: 'response'; status: number; reason: string };

interface StartLineResult {
  line?: StartLine;
  error?: string;
  /** For a request-looking line, what we could read even if it is invalid (used for `partial`). */
  method?: string;
  uri?: string;
}

/** Trim SP / HT only: other Unicode spaces are part of the value. */
function trimLws(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && (s[a] === ' ' || s[a] === '\t')) a++;
  while (b > a && (s[b - 1] === ' ' || s[b - 1] === '\t')) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

function parseRequestLine(line: string): StartLineResult {
  const sp1 = line.indexOf(' ');
  const method = sp1 === -1 ? line : line.slice(0, sp1);
  if (!isToken(method)) return { error: 'bad request line' };
  const sp2 = sp1 === -1 ? -1 : line.indexOf(' ', sp1 + 1);
  const lastSp = line.lastIndexOf(' ');
  const guess = { method, uri: sp1 === -1 ? '' : trimLws(line.slice(sp1 + 1, lastSp > sp1 ? lastSp : line.length)) };
  if (sp2 === -1) return { error: 'bad request line', ...guess };
  // Exactly one SP between the three elements: extra or trailing SP is malformed (RFC 4475 lwsstart, trws).
  const uri = line.slice(sp1 + 1, sp2);
  const version = line.slice(sp2 + 1);
  if (uri.length === 0 || version.includes(' ')) return { error: 'bad request line', ...guess };
  if (version.toUpperCase() !== 'SIP/2.0') {
    const looksSip = version.slice(0, 4).toUpperCase() === 'SIP/';
    return { error: looksSip ? 'unsupported SIP version' : 'bad request line', ...guess };
  }
  let parsedUri: ReturnType<typeof parseUri>;
  try {
    parsedUri = parseUri(uri);
  } catch {
    return { error: 'bad Request-URI', ...guess };
  }
  if (Object.keys(parsedUri.headers).length > 0) return { error: 'headers not allowed in Request-URI', ...guess };
  return { line: { kind: 'request', method, uri }, method, uri };
}

function parseStatusLine(line: string): StartLineResult {
  const sp1 = line.indexOf(' ');
  const version = sp1 === -1 ? line : line.slice(0, sp1);
  if (version.toUpperCase() !== 'SIP/2.0') return { error: 'unsupported SIP version' };
  const code = line.slice(sp1 + 1, sp1 + 4);
  const status = parseDecimal(code, 3);
  const after = line[sp1 + 4];
  if (sp1 === -1 || code.length !== 3 || status === undefined || (after !== undefined && after !== ' ')) {
    return { error: 'bad status line' };
  }
  if (status < 100 || status > 699) return { error: 'bad status code' };
  return { line: { kind: 'response', status, reason: line.slice(sp1 + 5) } };
}

export function parseMessage(data: Buffer, opts?: ParseOptions): ParseResult {
  try {
    return parseUnchecked(Buffer.isBuffer(data) ? data : Buffer.from(data), opts?.maxSize ?? DEFAULT_MAX_MESSAGE_SIZE);
  } catch {
    return { ok: false, error: 'malformed message' };
  }
}

type Fault = (error: string) => void;

function parseUnchecked(data: Buffer, maxSize: number): ParseResult {
  let error: string | undefined = data.length > maxSize ? 'message too large' : undefined;
  const fault: Fault = (e) => {
    if (error === undefined) error = e;
  };

  let pos = 0;
  while (pos < data.length && (data[pos] === 0x0d || data[pos] === 0x0a)) pos++;
  if (pos === data.length) return { ok: false, error: 'empty message' };
  const { headEnd, bodyStart } = findHeaderEnd(data, pos);

  const lines = data.toString('utf8', pos, headEnd).split('\n');
  const startText = stripCr(lines[0] ?? '');
  const isResponse = startText.slice(0, 4).toUpperCase() === 'SIP/';
  const start = isResponse ? parseStatusLine(startText) : parseRequestLine(startText);
  if (start.error) fault(start.error);
  else if (startText.includes('\r')) fault(isResponse ? 'bad status line' : 'bad request line');

  const headers = parseHeaderLines(lines, fault);
  if (bodyStart === -1) fault('missing blank line after headers');
  checkHeaderSet(headers, fault);
  const body = bodyStart === -1 ? EMPTY : extractBody(data, bodyStart, headers, fault);
  const via = validateFields(headers, start.line, fault);

  const sl = start.line;
  if (error !== undefined || sl === undefined) {
    const failed: { ok: false; error: string; partial?: SipRequest } = { ok: false, error: error ?? 'no start line' };
    if (!isResponse && start.method !== undefined && MANDATORY.every((h) => headers.has(h))) {
      failed.partial = createRequest(start.method, start.uri ?? '', headers);
    }
    return failed;
  }
  const message =
    sl.kind === 'request'
      ? createRequest(sl.method, sl.uri, headers, body)
      : createResponse(sl.status, sl.reason, headers, body);
  if (via !== undefined) message.parsedVia = via; // the transport and the transaction layer read it again
  return { ok: true, message };
}

/** The empty line ending the header block. Bare LF line ends are tolerated (robustness principle). */
function findHeaderEnd(data: Buffer, pos: number): { headEnd: number; bodyStart: number } {
  for (let lineStart = pos; ; ) {
    const nl = data.indexOf(0x0a, lineStart);
    if (nl === -1) return { headEnd: data.length, bodyStart: -1 };
    const len = nl - lineStart;
    if (len === 0 || (len === 1 && data[lineStart] === 0x0d)) return { headEnd: lineStart, bodyStart: nl + 1 };
    lineStart = nl + 1;
  }
}

/** Header lines after the start line, unfolded (RFC 3261 §7.3.1); malformed lines are reported and skipped. */
function parseHeaderLines(lines: string[], fault: Fault): SipHeaders {
  const headers = new SipHeaders();
  let name: string | undefined;
  let value = '';
  for (let li = 1; li < lines.length; li++) {
    const line = stripCr(lines[li] ?? '');
    if (line.length === 0) continue; // only the unterminated tail of a truncated block
    if (line.includes('\r')) {
      fault('bare CR in header');
      continue;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      // Folded continuation: joined to the previous value with a single space.
      if (name === undefined) {
        fault('bad header folding');
        continue;
      }
      const more = trimLws(line);
      if (more) value = value ? `${value} ${more}` : more;
      continue;
    }
    if (name !== undefined) headers.append(name, value);
    name = undefined;
    const colon = line.indexOf(':');
    const n = colon === -1 ? '' : trimLws(line.slice(0, colon));
    if (!isToken(n)) {
      fault('malformed header line');
      continue;
    }
    name = n;
    value = trimLws(line.slice(colon + 1));
  }
  if (name !== undefined) headers.append(name, value);
  return headers;
}

/** Mandatory headers present, single-valued headers not repeated. */
function checkHeaderSet(headers: SipHeaders, fault: Fault): void {
  const keys = headers.keys();
  for (let m = 0; m < MANDATORY.length; m++) if (!keys.includes(MANDATORY_KEYS[m])) fault(`missing ${MANDATORY[m]}`);
  for (let i = 0; i < keys.length; i++) {
    const k = keys[i];
    if (SINGLE_VALUED.has(k) && keys.indexOf(k) < i) fault(`multiple ${normalizeHeaderName(k)} headers`);
  }
}

function extractBody(data: Buffer, bodyStart: number, headers: SipHeaders, fault: Fault): Buffer {
  const clText = headers.get('Content-Length');
  const available = data.length - bodyStart;
  if (clText === undefined) {
    // UDP without Content-Length: the rest of the datagram is the body (RFC 3261 §18.3).
    return available > 0 ? ownedBytes(data, bodyStart, data.length) : EMPTY;
  }
  const cl = parseDecimal(clText, 10);
  if (cl === undefined) fault('bad Content-Length');
  else if (cl > available) fault('Content-Length larger than body');
  else if (cl > 0) return ownedBytes(data, bodyStart, bodyStart + cl);
  return EMPTY;
}

/**
 * The body in memory of its own: not a view of the datagram (which it would keep whole), nor a Buffer.from copy,
 * which for a small body lands in Node's shared 8 KiB pool, where a body kept for a whole call (an SDP offer or
 * answer) pins the slab of every short-lived buffer allocated beside it.
 */
function ownedBytes(data: Buffer, start: number, end: number): Buffer {
  const body = Buffer.allocUnsafeSlow(end - start);
  data.copy(body, 0, start, end);
  return body;
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}

function succeeds(fn: () => unknown): boolean {
  try {
    fn();
    return true;
  } catch {
    return false;
  }
}

/** Checks the fields every message needs; returns the top Via parsed (undefined when missing or bad). */
function validateFields(
  headers: SipHeaders,
  start: StartLine | undefined,
  fault: (e: string) => void,
): { text: string; via: Via } | undefined {
  let parsedVia: { text: string; via: Via } | undefined;
  if (headers.has('Via')) {
    const top = headers.getAll('Via')[0];
    try {
      if (top !== undefined) parsedVia = { text: top, via: parseVia(top) };
    } catch {
      // reported below
    }
    if (parsedVia === undefined) fault('bad Via');
  }
  for (const h of ['From', 'To'] as const) {
    const v = headers.get(h);
    if (v !== undefined && !succeeds(() => parseNameAddrWithTag(v))) fault(`bad ${h}`);
  }
  const callId = headers.get('Call-ID');
  if (callId !== undefined && (callId.length === 0 || /[\s]/.test(callId))) fault('bad Call-ID');
  const cseqText = headers.get('CSeq');
  if (cseqText !== undefined) {
    let cseq: ReturnType<typeof parseCSeq> | undefined;
    try {
      cseq = parseCSeq(cseqText);
    } catch {
      fault('bad CSeq');
    }
    if (cseq && start?.kind === 'request' && cseq.method !== start.method) fault('CSeq method does not match request');
  }
  const mf = headers.get('Max-Forwards');
  if (mf !== undefined) {
    const n = parseDecimal(mf, 10); // leading zeros are legal ("0068")
    if (n === undefined || n > 255) fault('bad Max-Forwards');
  }
  return parsedVia;
}
