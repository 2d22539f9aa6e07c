/**
 * The SIP engine port: everything the call logic needs from a SIP stack, and nothing more.
 *
 * Vocabulary follows drachtio-srf (an inbound INVITE is answered or rejected, an outbound INVITE yields a Dialog or a
 * SipError, a Dialog has in-dialog requests and ends with BYE) so the drachtio adapter maps onto it one to one.
 * Adapters: `embedded/` (default, our own RFC 3261 stack) and `drachtio/` (drachtio-srf + drachtio-server).
 *
 * Engine duties the call logic can rely on:
 * - retransmissions, 100 Trying, ACKs (both the non-2xx ACK and the end-to-end 2xx ACK), CANCEL matching;
 * - a CANCEL from the caller is answered 200 and the INVITE 487 by the engine, then `InboundCall.onCancel` fires;
 * - a 2xx arriving for an outbound INVITE that was cancelled (the CANCEL/200 race) is ACKed and BYEd by the engine;
 * - BYE received on a dialog is answered 200 by the engine, then `Dialog.onEnd` fires;
 * - other in-dialog requests are handed to `Dialog.onRequest` and must be answered by the handler (a B2BUA relays).
 * - `tls` (and any `sips:` Request-URI, which means TLS to the next hop, port 5061 by default): the engine opens the
 *   connection itself and verifies the peer's certificate (trusted CA, host name of the URI it resolved, SNI); a
 *   refused certificate or failed handshake is logged with who and why and ends the request as a transport error
 *   (SipError 503), like a refused TCP connect, so the call logic falls back. Connections are reused both ways and
 *   kept alive; the SDP crosses as bytes, so SDES keys (`a=crypto`) are never read or changed by the engine.
 * - an outbound INVITE without a proxy goes to the next hops its Request-URI resolves to (RFC 3263: NAPTR, SRV,
 *   A/AAAA), one after the other, each with a new branch: on a transport error, a 503 (but not Telnyx's CPS-limit
 *   503) or silence for `targetTimeoutMs`; `result` rejects only once every target failed (with 503 when none
 *   answered at all). INVITEs that set `targetTimeoutMs` (the Telnyx legs) also skip a target that stayed silent to
 *   an earlier INVITE, for a while, or fails its OPTIONS probes; with every target down such an INVITE fails at once
 *   with 503. Engines that resolve no SRV, like drachtio's, send to the one address instead.
 */

/** `tls`: SIP over TLS over TCP (RFC 3261 §26.2.1, Via `SIP/2.0/TLS`). */
export type SipTransportName = 'udp' | 'tcp' | 'tls';

/** The methods every engine advertises in Allow (OPTIONS answers, 405s): what a B2BUA relays or answers itself. */
export const ALLOWED_METHODS = 'INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO, NOTIFY, REFER, MESSAGE';

export interface SipPeer {
  transport: SipTransportName;
  address: string;
  port: number;
}

/** Header lines as (name, value) pairs, in order. */
export type HeaderList = ReadonlyArray<readonly [string, string]>;

export interface SipBody {
  body?: Buffer;
  contentType?: string;
}

export interface ResponseOptions extends SipBody {
  reason?: string;
  headers?: HeaderList;
}

/** A final SIP failure, or a local one mapped onto SIP semantics (408 timeout, 503 transport failure, 487 cancelled). */
export class SipError extends Error {
  readonly status: number;
  readonly reason: string;
  readonly headers: HeaderList;
  constructor(status: number, reason: string, headers: HeaderList = []) {
    super(`${status} ${reason}`);
    this.name = 'SipError';
    this.status = status;
    this.reason = reason;
    this.headers = headers;
  }
  header(name: string): string | undefined {
    const key = name.toLowerCase();
    return this.headers.find(([n]) => n.toLowerCase() === key)?.[1];
  }
}

/** An out-of-dialog INVITE received from a peer (the PBX). */
export interface InboundCall {
  readonly callId: string;
  readonly requestUri: string;
  /** User part of the Request-URI (the dialed number), '' when absent. */
  readonly calledUser: string;
  /** User part of the From URI (the calling number), '' when absent. */
  readonly callingUser: string;
  /** Raw From/To header values. */
  readonly from: string;
  readonly to: string;
  readonly source: SipPeer;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  /** True once the caller sent CANCEL (the engine has already answered 487). */
  readonly cancelled: boolean;
  header(name: string): string | undefined;
  headers(): HeaderList;
  onCancel(cb: (cancel: { reason?: string }) => void): void;
  /** Send a provisional response (180/183). Ignored once a final response was sent. */
  sendProvisional(status: number, opts?: ResponseOptions): void;
  /** Send a final non-2xx response; a 3xx keeps the Contact headers given (the redirect targets). Ignored once a final response was sent. */
  reject(status: number, opts?: ResponseOptions): void;
  /** Send 200 OK; resolves with the confirmed dialog when the ACK arrives, rejects (SipError 408) if it never does. */
  answer(opts: ResponseOptions): Promise<Dialog>;
}

/**
 * A new out-of-dialog INVITE as the admission screen sees it: before the engine keeps anything for it (no server
 * transaction, no 100 Trying, no InboundCall).
 */
export interface InviteScreenRequest {
  readonly callId: string;
  readonly source: SipPeer;
}

/** The screen's verdict on an INVITE it refuses: the final response the engine sends statelessly. */
export interface StatelessRefusal {
  status: number;
  reason: string;
  headers?: HeaderList;
}

/** Returns a refusal to turn the INVITE away at once, undefined to let it through to `onInvite`. */
export type InviteScreen = (invite: InviteScreenRequest) => StatelessRefusal | undefined;

export interface OutboundInviteOptions extends SipBody {
  /** Request-URI. */
  uri: string;
  /** host:port to send to instead of resolving the Request-URI host (an outbound proxy). */
  proxy?: string;
  transport?: SipTransportName;
  /** From header URI and display name; the engine adds the tag. */
  from: { uri: string; displayName?: string };
  /** To header URI; defaults to the Request-URI. */
  to?: { uri: string; displayName?: string };
  /** Extra headers (X-, P-Asserted-Identity, ...). Never Via/From/To/Call-ID/CSeq/Contact/Content-Length. */
  headers?: HeaderList;
  /** Digest credentials for 401/407 challenges. */
  auth?: { username: string; password: string };
  /** Give up with SipError 408 if no final response within this time (a ring timeout). */
  timeoutMs?: number;
  /**
   * How long one next hop may stay silent (no response at all, not even 100 Trying) before the engine gives up on it
   * and tries the next target (RFC 3263 §4.3): a dead SBC then costs this long, not Timer B's 32 s. Also bounds an
   * outbound proxy, the only next hop. Setting it also makes the INVITE take part in target health (skip targets that
   * are down, hold silent ones down); without it (default: Timer B, 64*T1) targets are tried in plain RFC 3263 order.
   */
  targetTimeoutMs?: number;
  /**
   * Max-Forwards of the new INVITE (default 70). A B2BUA passes on the caller's value minus one so that a routing
   * loop through it (Telnyx routed back to the gateway) still ends with 483 instead of looping for ever.
   */
  maxForwards?: number;
  /**
   * Delayed offer (RFC 3264 §2, RFC 6337 §3.1): this INVITE carries no SDP, so the 2xx will carry the offer and the
   * ACK must carry the answer, which only the caller can give. The engine then does not ACK the 2xx: `result`
   * resolves with a dialog whose `ack(answer)` the user must call once (2xx retransmissions are absorbed until
   * then). `bye()` on a dialog still waiting for its ACK sends an empty ACK first, so the transaction completes.
   */
  deferAck?: boolean;
}

export interface ProvisionalResponse {
  status: number;
  reason: string;
  headers: HeaderList;
  body: Buffer;
  contentType: string | undefined;
}

/** A UAC INVITE in progress. */
export interface OutboundCall {
  readonly callId: string;
  onProvisional(cb: (res: ProvisionalResponse) => void): void;
  /** Resolves with the dialog when answered (ACK already sent), rejects with SipError otherwise. */
  readonly result: Promise<Dialog>;
  /** CANCEL the INVITE (no-op after a final response; a late 2xx is ACKed and BYEd). */
  cancel(opts?: { headers?: HeaderList }): void;
}

export interface InDialogRequest {
  readonly method: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  header(name: string): string | undefined;
  headers(): HeaderList;
  respond(status: number, opts?: ResponseOptions): void;
  /**
   * For an INVITE answered 2xx: resolves with the body of its ACK (the answer, when the re-INVITE had no SDP and our
   * 2xx carried the offer), or undefined when no ACK came within 64*T1. Resolves undefined for other requests.
   */
  awaitAck(): Promise<SipBody | undefined>;
}

export interface DialogResponse {
  readonly status: number;
  readonly reason: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  header(name: string): string | undefined;
  headers(): HeaderList;
  /** Present on the 2xx of an INVITE sent with `deferAck`: send its ACK with the answer (exactly once). */
  ack?(answer: SipBody): void;
}

export interface InDialogRequestOptions extends SipBody {
  headers?: HeaderList;
  /** INVITE without SDP (delayed offer): do not ACK the 2xx; the response's `ack(answer)` sends it. */
  deferAck?: boolean;
}

export interface DialogEnd {
  /** 'remote' when the peer sent BYE, 'local' when we did. */
  by: 'remote' | 'local';
  /** Reason header of the BYE, if any. */
  reason?: string;
  headers: HeaderList;
}

/** A confirmed INVITE dialog (either side). */
export interface Dialog {
  readonly id: string;
  readonly callId: string;
  /** SDP (or other body) of the offer/answer that established the dialog, as the remote party sent it. */
  readonly remoteBody: Buffer;
  readonly remoteContentType: string | undefined;
  /**
   * Headers of the message that established the dialog as the remote party sent it (the 2xx on the UAC side, the
   * INVITE on the UAS side). Optional: an adapter that cannot see them leaves it undefined.
   */
  readonly remoteHeaders?: HeaderList;
  /**
   * UAS side: the body of the ACK that confirmed the dialog — the answer, when our 2xx carried the offer (the caller
   * sent its INVITE without SDP). Empty otherwise.
   */
  readonly ackBody: SipBody;
  readonly ended: boolean;
  /** In-dialog requests other than BYE/ACK/CANCEL (re-INVITE, UPDATE, INFO, OPTIONS, NOTIFY, MESSAGE, REFER). */
  onRequest(cb: (req: InDialogRequest) => void): void;
  onEnd(cb: (end: DialogEnd) => void): void;
  /** Send an in-dialog request; for INVITE the engine ACKs a 2xx itself, unless `deferAck`. */
  request(method: string, opts?: InDialogRequestOptions): Promise<DialogResponse>;
  /** UAC side, dialog from an INVITE sent with `deferAck`: send the ACK of its 2xx with the answer. Once; else no-op. */
  ack(answer: SipBody): void;
  /** Send BYE (idempotent). */
  bye(opts?: { headers?: HeaderList }): Promise<void>;
}

export interface EngineStats {
  messagesIn: number;
  messagesOut: number;
  parseErrors: number;
  activeDialogs: number;
  activeTransactions: number;
  /** INVITEs the admission screen refused statelessly (engines with `screenInvites`). */
  statelessRefusals?: number;
}

/** How one next hop the engine resolved (RFC 3263) stands: for /healthz, /metrics and the CLI. */
export interface SipTargetStatus {
  /** `transport:address:port`. */
  target: string;
  /** The DNS name it came from: the SRV target, or the URI's host. */
  name: string;
  /** False while INVITEs skip it. */
  up: boolean;
  /** Why it is skipped: `probe` (OPTIONS probes failed) or `invite` (an INVITE got no answer; until `downUntil`). */
  down?: 'probe' | 'invite';
  downUntil?: string;
  /** OPTIONS probes in a row that failed. */
  probeFailures: number;
  /** The last OPTIONS probe: when, and its status or `timeout` / `transport_error`. */
  lastProbe?: { at: string; result: string };
}

/** What a certificate reload did: `none` when the engine serves no TLS (or manages its own certificates). */
export type CertificateReload =
  | { outcome: 'reloaded'; subject: string; validTo: string; fingerprint256: string }
  | { outcome: 'refused'; error: string }
  | { outcome: 'none' };

export interface SipEngine {
  readonly kind: 'embedded' | 'drachtio';
  start(): Promise<void>;
  stop(): Promise<void>;
  /**
   * Re-read the TLS certificate and key the engine serves (SIGHUP), for new connections; open ones keep theirs.
   * Files that cannot be read or do not match leave the certificate in force unchanged (`refused`).
   */
  reloadCertificates?(): CertificateReload;
  /** Where the engine listens (for logs and tests). */
  readonly localPort: number;
  onInvite(handler: (call: InboundCall) => void): void;
  /**
   * The admission screen, for refusals that must cost next to nothing (overload). The engine calls it for each new
   * INVITE without a To tag that matches no transaction, before it keeps any state; a refusal is sent statelessly
   * (RFC 3261 §8.2.7, as Kamailio's sl_send_reply): the response is built from the request's Via, From, To (plus a
   * tag derived from the request, the same for its retransmissions), Call-ID and CSeq, sent once and forgotten. A
   * retransmitted INVITE is screened (and usually refused) again, and the ACK to the refusal matches nothing and is
   * dropped silently. A refused INVITE never reaches `onInvite`. Optional: an engine without it (drachtio, whose
   * server keeps the transaction anyway) hands every INVITE to `onInvite`, where admission refuses it statefully.
   */
  screenInvites?(screen: InviteScreen): void;
  invite(opts: OutboundInviteOptions): OutboundCall;
  stats(): EngineStats;
  /** The next hops the engine resolved and probes, with their health; absent: the engine does no RFC 3263 resolution. */
  targets?(): SipTargetStatus[];
  /**
   * Draining (SIGTERM, POST /admin/drain): out-of-dialog OPTIONS are answered 503 with Retry-After instead of 200,
   * so a dispatcher probing with OPTIONS (Kamailio's ds_ping) stops sending new calls here. Dialogs are unaffected.
   */
  setDraining?(draining: boolean): void;
}
