/**
 * Turning what a drachtio client writes (a start line, header lines and a body, without Via, CSeq, tags or Contact)
 * into SIP messages on the wire, the way drachtio-server does it with sofia-sip: client headers become sofia tags
 * except the ones it keeps for itself (drachtio.cpp m_setImmutableHdrs: Via, Route, RSeq, Record-Route,
 * Content-Length), custom header names are re-capitalised (drachtio.cpp makeTags, capitalizeAfterDash), and a body
 * without Content-Type is labelled application/sdp when it starts with v=0, else refused (sip-dialog-controller.cpp
 * "missing content-type").
 */
import { newBranch } from '../../../src/sip/embedded/transaction-helpers.ts';
import {
  createRequest,
  type SipEndpoint,
  SipHeaders,
  type SipRequest,
  type SipTransportName,
} from '../../../src/sip/embedded/message.ts';
import { parseNameAddr } from '../../../src/sip/syntax/address.ts';
import { parseUri } from '../../../src/sip/syntax/uri.ts';
import net from 'node:net';
import type { AppSipMessage } from './wire.ts';

const IMMUTABLE = new Set(['via', 'route', 'rseq', 'record-route', 'content-length']);
const LOCALHOST_HEADERS = new Set(['from', 'to', 'contact', 'p-asserted-identity']);

/** The local SIP address of the double (one UDP socket and one TCP listener on the same port). */
export interface LocalAddress {
  host: string;
  port: number;
}

/** sofia-sip's Contact for a transport (sip-transports.cpp getContactUri): `;transport=tcp` for connection ones. */
export function contactFor(local: LocalAddress, transport: SipTransportName): string {
  return `<sip:${local.host}:${local.port}${transport === 'udp' ? '' : `;transport=${transport}`}>`;
}

/** drachtio.cpp capitalizeAfterDash: `x-kallglot-session-id` → `X-Kallglot-Session-Id`. */
function wireName(name: string): string {
  return name.replace(/(^|-)([a-z])/g, (_, dash: string, c: string) => dash + c.toUpperCase());
}

/**
 * Copies the client's headers onto `to`, except the immutable ones and those in `skip` (the double sets them itself).
 * SipHeaders gives known names their canonical case.
 */
export function copyAppHeaders(app: AppSipMessage, to: SipHeaders, skip: readonly string[], host: string): void {
  const skipped = new Set([...IMMUTABLE, ...skip.map((s) => s.toLowerCase())]);
  for (const [name, value] of app.headers) {
    if (skipped.has(name.toLowerCase())) continue;
    // makeTags: `@localhost` in these headers means "this server"; sofia then writes its own address.
    const local = LOCALHOST_HEADERS.has(name.toLowerCase()) ? value.replace(/@localhost\b/g, `@${host}`) : value;
    to.append(wireName(name), local);
  }
}

/** Content-Type for the client's body, or throws like drachtio-server does when it cannot tell. */
export function bodyOf(app: AppSipMessage): { body: Buffer; contentType?: string } {
  const body = Buffer.from(app.body, 'utf8');
  if (body.length === 0) return { body };
  const given = app.headers.find(([n]) => n.toLowerCase() === 'content-type')?.[1];
  if (given) return { body, contentType: given };
  if (app.body.startsWith('v=0')) return { body, contentType: 'application/sdp' };
  throw new Error('missing content-type');
}

export function setBody(headers: SipHeaders, body: { body: Buffer; contentType?: string }): void {
  headers.delete('Content-Type');
  if (body.contentType) headers.append('Content-Type', body.contentType);
}

/** Where a SIP URI (or a name-addr) sends us. The double resolves no DNS: hosts must be IP literals. */
export function endpointOf(target: string, fallback: SipTransportName): SipEndpoint {
  const text = target.trim();
  const uri = text.includes('<') ? parseNameAddr(text).uri : parseUri(text);
  const host = uri.host.replace(/^\[|\]$/g, '');
  if (!net.isIP(host)) throw new Error(`the drachtio-server double resolves no DNS names: ${uri.host}`);
  const t = uri.params.transport?.toLowerCase();
  const transport: SipTransportName = t === 'tcp' || t === 'udp' ? t : uri.scheme === 'sips' ? 'tls' : fallback;
  return { transport, address: host, port: uri.port ?? (transport === 'tls' ? 5061 : 5060) };
}

/** A request with a fresh top Via (sofia's NTATAG_CLIENT_RPORT adds `;rport`, controller.cpp nta_agent_create). */
export function newRequest(method: string, uri: string, local: LocalAddress, transport: SipTransportName): SipRequest {
  const headers = new SipHeaders();
  headers.append('Via', `SIP/2.0/${transport.toUpperCase()} ${local.host}:${local.port};branch=${newBranch()};rport`);
  return createRequest(method, uri, headers);
}
