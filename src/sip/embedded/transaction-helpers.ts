/**
 * Message builders and matching keys shared by the client and server transactions (RFC 3261 §8.2.6, §9.1, §17).
 * Kept apart from transaction.ts so the transaction classes can use them without an import cycle.
 */
import { randomHex } from './ids.ts';
import { getTag, withTag } from '../syntax/address.ts';
import { parseCSeq } from './cseq.ts';
import { createRequest, createResponse, EMPTY_BODY, reasonPhrase, SipHeaders } from './message.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipResponse } from './message.ts';
import { parseVia } from './via.ts';
import type { Via } from './via.ts';
import { stripBrackets } from '../syntax/uri.ts';
import type { HeaderList } from '../port.ts';

/** RFC 3261 §8.1.1.7 magic cookie: branches starting with it are globally unique transaction ids. */
export const BRANCH_COOKIE = 'z9hG4bK';

export function newBranch(): string {
  return `${BRANCH_COOKIE}${randomHex(10)}`;
}

/** Raw text of the top Via (first value, even when several are comma-joined on one line). */
export function topViaText(msg: SipMessage): string | undefined {
  return msg.headers.getAll('Via')[0];
}

/**
 * Parsed top Via; throws (SipParseError) when missing or malformed. Parsed once per message and Via text (cached on
 * the message): treat the result as read-only.
 */
export function topVia(msg: SipMessage): Via {
  const text = topViaText(msg);
  if (text === undefined) throw new Error('missing Via');
  const cached = msg.parsedVia;
  if (cached !== undefined && cached.text === text) return cached.via;
  const via = parseVia(text);
  msg.parsedVia = { text, via };
  return via;
}

/**
 * Where a response to a request goes (RFC 3261 §18.2.2, RFC 3581 §4): over TCP/TLS back on the connection the request
 * arrived on (its source endpoint); over UDP to `received` (else the Via host) at `rport` (else the Via port, else 5060).
 */
export function responseDestination(via: Via, source: SipEndpoint): SipEndpoint {
  if (source.transport !== 'udp') return { ...source };
  const received = via.params.received;
  const address = stripBrackets(typeof received === 'string' && received ? received : via.host);
  const rport = via.params.rport;
  const rportNum = typeof rport === 'string' && /^\d+$/.test(rport) ? Number(rport) : undefined;
  return { transport: 'udp', address, port: rportNum ?? via.port ?? 5060 };
}

/** Client transaction key (§17.1.3): top Via branch + CSeq method. */
export function clientKey(branch: string, method: string): string {
  return `${branch}|${method}`;
}

/**
 * A copy of `s` that shares no memory with the text it was cut from. A substring of 13+ characters is a view into its
 * parent (V8's sliced strings, and a concatenation keeps its parts), so a key kept for 32 s built from a received
 * branch or Call-ID would keep the whole header block of that message. The concatenation is flattened into a new
 * string by the slice; its parent is that new string.
 */
export function ownString(s: string): string {
  return ` ${s}`.slice(1);
}

/**
 * Server transaction key (§17.2.3): branch + sent-by + method, with ACK mapped to INVITE. For pre-RFC 3261 peers (no
 * magic cookie) a simplified §17.2.3 fallback: Call-ID, From tag, CSeq number, top Via and method.
 */
export function serverKey(req: SipRequest, via: Via, method: string): string {
  const keyMethod = method === 'ACK' ? 'INVITE' : method;
  const sentBy = `${via.host.toLowerCase()}:${via.port ?? 5060}`;
  const branch = typeof via.params.branch === 'string' ? via.params.branch : '';
  if (branch.startsWith(BRANCH_COOKIE)) return `${branch}|${sentBy}|${keyMethod}`;
  const callId = req.headers.get('Call-ID') ?? '';
  const fromTag = getTag(req.headers.get('From') ?? '') ?? '';
  let seq = '';
  try {
    seq = String(parseCSeq(req.headers.get('CSeq') ?? '').seq);
  } catch {
    seq = '';
  }
  return `2543|${callId}|${fromTag}|${seq}|${sentBy}|${branch}|${keyMethod}`;
}

export interface BuildResponseOptions {
  /** Added to To when it has no tag yet (the UAS's dialog tag). */
  toTag?: string;
  headers?: HeaderList;
  body?: Buffer;
  contentType?: string;
}

/** A response to `req` per §8.2.6: Via (all, in order), From, To (+tag), Call-ID, CSeq copied. */
export function buildResponse(
  req: SipRequest,
  status: number,
  reason?: string,
  opts: BuildResponseOptions = {},
): SipResponse {
  const h = new SipHeaders();
  for (const [name, value] of req.headers.lines()) if (name === 'Via') h.append('Via', value);
  const from = req.headers.get('From');
  if (from !== undefined) h.append('From', from);
  const to = req.headers.get('To');
  if (to !== undefined) h.append('To', opts.toTag && getTag(to) === undefined ? withTag(to, opts.toTag) : to);
  for (const name of ['Call-ID', 'CSeq']) {
    const v = req.headers.get(name);
    if (v !== undefined) h.append(name, v);
  }
  // §8.2.6.1: a 100 Trying echoes the request's Timestamp so the client can estimate RTT.
  const ts = req.headers.get('Timestamp');
  if (status === 100 && ts !== undefined) h.append('Timestamp', ts);
  for (const [n, v] of opts.headers ?? []) h.append(n, v);
  const body = opts.body ?? EMPTY_BODY;
  if (body.length > 0 && opts.contentType) h.append('Content-Type', opts.contentType);
  return createResponse(status, reason ?? reasonPhrase(status), h, body);
}

function copyRoutes(from: SipRequest, to: SipHeaders): void {
  for (const route of from.headers.getAll('Route')) to.append('Route', route);
}

/**
 * CANCEL for a pending INVITE (§9.1): same Request-URI, Call-ID, From, To and CSeq number, a single Via equal to
 * the INVITE's top Via (so it matches the same server transaction branch), and the INVITE's Route set.
 */
export function buildCancel(invite: SipRequest): SipRequest {
  const h = new SipHeaders();
  const via = topViaText(invite);
  if (via !== undefined) h.append('Via', via);
  h.append('Max-Forwards', '70');
  copyRoutes(invite, h);
  for (const name of ['From', 'To', 'Call-ID']) {
    const v = invite.headers.get(name);
    if (v !== undefined) h.append(name, v);
  }
  const { seq } = parseCSeq(invite.headers.get('CSeq') ?? '');
  h.append('CSeq', `${seq} CANCEL`);
  return createRequest('CANCEL', invite.uri, h);
}

/**
 * ACK for a 300-699 answer to an INVITE (§17.1.1.3): generated by the client transaction, same branch as the
 * INVITE, To taken from the response (it carries the UAS tag), Route copied from the INVITE.
 */
export function buildNon2xxAck(invite: SipRequest, response: SipResponse): SipRequest {
  const h = new SipHeaders();
  const via = topViaText(invite);
  if (via !== undefined) h.append('Via', via);
  h.append('Max-Forwards', '70');
  copyRoutes(invite, h);
  for (const name of ['From', 'Call-ID']) {
    const v = invite.headers.get(name);
    if (v !== undefined) h.append(name, v);
  }
  const to = response.headers.get('To') ?? invite.headers.get('To');
  if (to !== undefined) h.append('To', to);
  const { seq } = parseCSeq(invite.headers.get('CSeq') ?? '');
  h.append('CSeq', `${seq} ACK`);
  return createRequest('ACK', invite.uri, h);
}
