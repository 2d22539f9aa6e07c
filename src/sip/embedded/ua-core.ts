/**
 * Shared UA-core plumbing for the embedded engine: building requests we originate (Via, Contact, Max-Forwards),
 * running a request through a client transaction as a promise, and answering digest challenges (RFC 3261 §22).
 */
import net from 'node:net';
import type { Logger } from '../../logger.ts';
import type { HeaderList } from '../port.ts';
import { buildAuthorization, pickChallenge } from '../syntax/digest.ts';
import { stripBrackets } from '../syntax/uri.ts';
import type { IpFamily } from './listen.ts';
import {
  createRequest,
  EMPTY_BODY,
  SipHeaders,
  type SipEndpoint,
  type SipRequest,
  type SipResponse,
  type SipTransportName,
} from './message.ts';
import type { TransactionLayer } from './transaction.ts';
import { newBranch } from './transaction.ts';
import { normalizeAddress } from './via.ts';

/**
 * Headers the engine owns; callers' pass-through headers with these names are dropped. (WWW-/Proxy-Authenticate may
 * be set by the call logic on a 401/407 it sends; the B2BUA never copies them from the other leg.)
 */
const ENGINE_HEADERS = new Set([
  'via',
  'from',
  'to',
  'call-id',
  'cseq',
  'contact',
  'content-length',
  'content-type',
  'record-route',
  'route',
  'max-forwards',
  'authorization',
  'proxy-authorization',
  'user-agent',
  'server',
]);

export function passThroughHeaders(headers: HeaderList | undefined): HeaderList {
  return (headers ?? []).filter(([n]) => !ENGINE_HEADERS.has(n.toLowerCase())).map(([n, v]) => [n, v]);
}

export interface UaContext {
  tx: TransactionLayer;
  logger: Logger;
  /** Address written in Via/Contact (toward IPv4 peers when publicAddress6 is set). */
  publicAddress: string;
  /** Address written in Via/Contact toward IPv6 peers, for a dual-stack gateway; unset: publicAddress. */
  publicAddress6?: string;
  /** The peers the listening sockets reach (0: both); hostnames resolve to this family only. */
  family: IpFamily;
  localPort: number;
  /** The TLS listener's port, written in Via/Contact of TLS messages; unset (no TLS listener): localPort. */
  tlsPort?: number;
  userAgent: string;
  /** Send a message outside any transaction (ACK for 2xx, 2xx retransmissions). */
  sendRaw(msg: SipRequest | SipResponse, dest: SipEndpoint): void;
}

/** An IPv6 literal goes in brackets in a Via sent-by or a SIP URI (RFC 3261 §25.1 IPv6reference). */
function hostForUri(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

/**
 * Our host as written in a Via or Contact sent to `peer` (the next hop's IP address): the public address of the
 * peer's family, so an IPv4 PBX never gets an IPv6 Contact from a dual-stack gateway, nor the reverse.
 */
export function localHost(ctx: UaContext, peer?: string): string {
  // No ':' is no IPv6 address (the common IPv4 peer), without the IPv6 pattern match: this runs per request built.
  const v6Peer = peer?.includes(':') === true && net.isIPv6(normalizeAddress(stripBrackets(peer)));
  return hostForUri(v6Peer ? (ctx.publicAddress6 ?? ctx.publicAddress) : ctx.publicAddress);
}

/** Where peers reach us on `transport`: the TLS listener for TLS, the UDP/TCP port otherwise. */
function localPortFor(ctx: UaContext, transport: SipTransportName): number {
  return transport === 'tls' ? (ctx.tlsPort ?? ctx.localPort) : ctx.localPort;
}

export function viaValue(ctx: UaContext, transport: SipTransportName, branch = newBranch(), peer?: string): string {
  return `SIP/2.0/${transport.toUpperCase()} ${localHost(ctx, peer)}:${localPortFor(ctx, transport)};branch=${branch};rport`;
}

/**
 * Our Contact for a message on `transport`, in a request or dialog whose Request-URI is `requestUri`.
 * - A sips: Request-URI gets a sips: Contact: RFC 3261 §8.1.1.8 and §12.1.1 require it.
 * - Otherwise TLS is written `sip:...;transport=tls`. RFC 5630 §3.1.3 deprecates that parameter as a way of asking
 *   for security, but as a transport hint it is what SBCs (Telnyx's among them) expect; without it the Contact would
 *   send the peer to UDP (RFC 3263 §4.1 for an address with a port), and a sips: Contact would turn the peer's sip:
 *   dialog into a SIPS one it never asked for (RFC 5630 §3.1.1), which some SBCs refuse.
 */
export function contactValue(ctx: UaContext, transport: SipTransportName, peer?: string, requestUri = ''): string {
  const hostPort = `${localHost(ctx, peer)}:${localPortFor(ctx, transport)}`;
  if (/^sips:/i.test(requestUri)) return `<sips:gw@${hostPort}>`;
  return `<sip:gw@${hostPort}${transport === 'udp' ? '' : `;transport=${transport}`}>`;
}

export interface NewRequestSpec {
  method: string;
  uri: string;
  transport: SipTransportName;
  /** The next hop's address: its family picks the address in our Via and Contact (localHost). */
  peer?: string;
  from: string;
  to: string;
  callId: string;
  cseq: number;
  routes?: string[];
  contact?: boolean;
  maxForwards?: number;
  headers?: HeaderList;
  body?: Buffer;
  contentType?: string;
}

export function buildRequest(ctx: UaContext, spec: NewRequestSpec): SipRequest {
  const h = new SipHeaders();
  h.append('Via', viaValue(ctx, spec.transport, undefined, spec.peer));
  h.append('Max-Forwards', String(spec.maxForwards ?? 70));
  for (const r of spec.routes ?? []) h.append('Route', r);
  h.append('From', spec.from);
  h.append('To', spec.to);
  h.append('Call-ID', spec.callId);
  h.append('CSeq', `${spec.cseq} ${spec.method}`);
  if (spec.contact) h.append('Contact', contactValue(ctx, spec.transport, spec.peer, spec.uri));
  h.append('User-Agent', ctx.userAgent);
  for (const [n, v] of passThroughHeaders(spec.headers)) h.append(n, v);
  const body = spec.body ?? EMPTY_BODY;
  if (body.length > 0) h.append('Content-Type', spec.contentType ?? 'application/sdp');
  return createRequest(spec.method, spec.uri, h, body);
}

/** Synthesize a final response for local failures so callers handle one shape (RFC 3261 §8.1.3.1). */
function localFailure(req: SipRequest, status: number, reason: string): SipResponse {
  const h = new SipHeaders();
  for (const name of ['Via', 'From', 'To', 'Call-ID', 'CSeq']) {
    const v = req.headers.get(name);
    if (v !== undefined) h.append(name, v);
  }
  return { kind: 'response', status, reason, version: 'SIP/2.0', headers: h, body: EMPTY_BODY };
}

export interface TransactOptions {
  onProvisional?: (res: SipResponse) => void;
  /** Called with each client transaction's handle so the caller can CANCEL the current attempt. */
  onAttempt?: (req: SipRequest) => void;
  /**
   * The final response to an INVITE is a 2xx (`req` is the request it answers): returns what handles the 2xx after it
   * (retransmissions, forked answers: they need an ACK too) for the rest of the transaction's Accepted state (RFC
   * 6026, 32 s). The transaction keeps only that: make it hold as little as those need. Unset: later 2xx are ignored.
   */
  late2xxHandler?: (req: SipRequest) => (res: SipResponse) => void;
  /** Timer B/F of each transaction instead of 64*T1 (RFC 3263 failover gives each next hop a few seconds). */
  timeoutMs?: number;
  /**
   * No response came (`timeout`) or the request could not be sent (`transport`): told just before the synthesized
   * 408/503, which a caller must not mistake for one the peer sent (failover treats them differently).
   */
  onLocalFailure?: (why: 'timeout' | 'transport') => void;
}

const ignoreLate2xx = (): void => undefined;

/** One client transaction as a promise of its final response (timeout → 408, transport error → 503). */
export function transact(
  ctx: UaContext,
  req: SipRequest,
  dest: SipEndpoint,
  opts: TransactOptions = {},
): Promise<SipResponse> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (res: SipResponse): void => {
      if (settled) return;
      settled = true;
      resolve(res);
    };
    opts.onAttempt?.(req);
    const failed = (why: 'timeout' | 'transport', res: SipResponse): void => {
      if (!settled) opts.onLocalFailure?.(why);
      finish(res);
    };
    const clientTx = ctx.tx.sendRequest(
      req,
      dest,
      {
        onResponse: (res) => {
          if (res.status < 200) {
            opts.onProvisional?.(res);
            return;
          }
          if (settled) return;
          finish(res);
          // Accepted: from here on the transaction holds the late-2xx handler, not this closure (req, opts, the TU).
          if (res.status < 300) clientTx.keepForLate2xx(opts.late2xxHandler?.(req) ?? ignoreLate2xx);
        },
        onTimeout: () => failed('timeout', localFailure(req, 408, 'Request Timeout')),
        onTransportError: () => failed('transport', localFailure(req, 503, 'Service Unavailable')),
      },
      { timeoutMs: opts.timeoutMs },
    );
  });
}

export interface Credentials {
  username: string;
  password: string;
}

/**
 * Send a request, answering up to two digest challenges (the second only when the server says the nonce was stale).
 * `nextCSeq` gives the CSeq for the re-sent request (RFC 3261 §22.2: a new request, so CSeq increments).
 */
export async function transactWithAuth(
  ctx: UaContext,
  req: SipRequest,
  dest: SipEndpoint,
  auth: Credentials | undefined,
  nextCSeq: () => number,
  opts: TransactOptions = {},
): Promise<{ response: SipResponse; request: SipRequest }> {
  let current = req;
  for (let attempt = 0; ; attempt++) {
    const res = await transact(ctx, current, dest, opts);
    if ((res.status !== 401 && res.status !== 407) || !auth || attempt >= 2) return { response: res, request: current };
    const header = res.status === 401 ? 'WWW-Authenticate' : 'Proxy-Authenticate';
    const challenge = pickChallenge(
      res.headers.getAll(header).length ? res.headers.getAll(header) : [res.headers.get(header) ?? ''],
    );
    if (!challenge) return { response: res, request: current };
    if (attempt === 1 && !challenge.stale) return { response: res, request: current };
    const next = current.headers.clone();
    next.set('Via', viaValue(ctx, transportOf(current), undefined, dest.address));
    next.set('CSeq', `${nextCSeq()} ${current.method}`);
    next.set(
      res.status === 401 ? 'Authorization' : 'Proxy-Authorization',
      buildAuthorization({
        challenge,
        method: current.method,
        uri: current.uri,
        username: auth.username,
        password: auth.password,
        body: current.body,
      }),
    );
    current = createRequest(current.method, current.uri, next, current.body);
    ctx.logger.debug({ method: current.method, status: res.status }, 'answering digest challenge');
  }
}

export function transportOf(req: SipRequest): SipTransportName {
  const sent = /^SIP\s*\/\s*2\.0\s*\/\s*(TCP|TLS)\b/i.exec((req.headers.get('Via') ?? '').trim())?.[1];
  return sent ? (sent.toLowerCase() as SipTransportName) : 'udp';
}

/** Read-only header accessors over SipHeaders, as the port exposes them. */
export function headerAccess(headers: SipHeaders): { header(name: string): string | undefined; headers(): HeaderList } {
  return { header: (name) => headers.get(name), headers: () => headers.lines() };
}
