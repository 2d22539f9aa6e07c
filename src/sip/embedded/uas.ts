/**
 * An out-of-dialog INVITE received by the embedded engine (the PBX leg), seen through the port's InboundCall.
 * CANCEL handling: the transaction layer has already answered 200 to the CANCEL; here we answer the INVITE 487
 * (RFC 3261 §9.2) and tell the call logic.
 */
import type { Dialog, HeaderList, InboundCall, ResponseOptions } from '../port.ts';
import { SipError } from '../port.ts';
import { getTag, parseNameAddr, withTag } from '../syntax/address.ts';
import { EmbeddedDialog } from './dialog.ts';
import { newTag } from './ids.ts';
import type { SipEndpoint, SipRequest, SipTransportName } from './message.ts';
import { parseCSeq } from './cseq.ts';
import type { ServerTransaction } from './transaction.ts';
import { contactValue, headerAccess, passThroughHeaders, type UaContext } from './ua-core.ts';
import { parseUri } from '../syntax/uri.ts';

function userOf(uriText: string): string {
  try {
    return parseUri(uriText).user ?? '';
  } catch {
    return '';
  }
}

export interface UasHooks {
  /** Register a confirmed or early dialog so in-dialog requests reach it. */
  addDialog(d: EmbeddedDialog): void;
  removeDialog(d: EmbeddedDialog): void;
  resolveNextHop(uri: string, transport: SipTransportName): Promise<SipEndpoint>;
  /** The inbound INVITE got its final response: forget it for merge detection. */
  completed(call: EmbeddedInboundCall): void;
}

export class EmbeddedInboundCall implements InboundCall {
  readonly callId: string;
  readonly requestUri: string;
  readonly calledUser: string;
  readonly callingUser: string;
  readonly from: string;
  readonly to: string;
  readonly source: SipEndpoint;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly header: InboundCall['header'];
  readonly headers: InboundCall['headers'];
  readonly #ctx: UaContext;
  readonly #tx: ServerTransaction;
  readonly #req: SipRequest;
  readonly #hooks: UasHooks;
  readonly #localTag = newTag();
  #finalSent = false;
  #isCancelled = false;
  #cancelHandlers: Array<(c: { reason?: string }) => void> = [];

  constructor(ctx: UaContext, req: SipRequest, tx: ServerTransaction, hooks: UasHooks) {
    this.#ctx = ctx;
    this.#req = req;
    this.#tx = tx;
    this.#hooks = hooks;
    this.callId = req.headers.get('Call-ID') ?? '';
    this.requestUri = req.uri;
    this.from = req.headers.get('From') ?? '';
    this.to = req.headers.get('To') ?? '';
    this.calledUser = userOf(req.uri) || safeUser(this.to);
    this.callingUser = safeUser(this.from);
    this.source = req.source ?? tx.source;
    this.body = req.body;
    this.contentType = req.headers.get('Content-Type');
    const access = headerAccess(req.headers);
    this.header = access.header;
    this.headers = access.headers;
  }

  get cancelled(): boolean {
    return this.#isCancelled;
  }

  onCancel(cb: (c: { reason?: string }) => void): void {
    if (this.#isCancelled) queueMicrotask(() => cb({}));
    else if (!this.#finalSent) this.#cancelHandlers.push(cb); // after a final response no CANCEL applies
  }

  /** Called by the engine when a CANCEL matched this INVITE. */
  handleCancel(cancel: SipRequest): void {
    if (this.#finalSent || this.#isCancelled) return;
    this.#isCancelled = true;
    this.reject(487, { reason: 'Request Terminated' });
    const reason = cancel.headers.get('Reason');
    for (const cb of this.#cancelHandlers.splice(0)) cb({ reason });
  }

  sendProvisional(status: number, opts: ResponseOptions = {}): void {
    if (this.#finalSent || status < 101 || status > 199) return;
    this.#tx.respond(this.#response(status, opts));
  }

  reject(status: number, opts: ResponseOptions = {}): void {
    if (this.#finalSent) return;
    this.#finalSent = true;
    this.#forgetCancelHandlers();
    this.#tx.respond(this.#response(status, opts));
    this.#hooks.completed(this);
  }

  async answer(opts: ResponseOptions): Promise<Dialog> {
    if (this.#finalSent)
      throw new SipError(this.#isCancelled ? 487 : 500, this.#isCancelled ? 'Request Terminated' : 'Already answered');
    this.#finalSent = true;
    this.#forgetCancelHandlers();
    const res = this.#response(200, opts);
    res.headers.append('Contact', contactValue(this.#ctx, this.source.transport, this.source.address, this.#req.uri));
    const remoteTarget = contactTarget(this.#req);
    const hooks = this.#hooks; // not `this`: the dialog must not keep the inbound call (and its handlers) alive
    const dialog = new EmbeddedDialog(
      this.#ctx,
      {
        callId: this.callId,
        localTag: this.#localTag,
        remoteTag: getTag(this.from) ?? '',
        localAddress: withTag(this.to, this.#localTag),
        remoteAddress: this.from,
        localCSeq: Math.floor(Math.random() * 10_000),
        remoteCSeq: parseCSeq(this.#req.headers.get('CSeq') ?? '1 INVITE').seq,
        remoteTarget,
        routeSet: this.#req.headers.getAll('Record-Route'),
        transport: this.source.transport,
        // Symmetric signalling toward the PBX (RFC 3581 spirit): send in-dialog requests to where its INVITE came
        // from, unless it asked for a route set. Works through NAT and reuses its TCP connection.
        nextHop: this.#req.headers.has('Record-Route') ? undefined : this.source,
        peer: this.source.address,
        remoteBody: this.body,
        remoteContentType: this.contentType,
        remoteHeaders: this.#req.headers.lines(),
      },
      (uri, transport) => hooks.resolveNextHop(uri, transport),
      (d) => hooks.removeDialog(d),
    );
    this.#hooks.addDialog(dialog);
    this.#tx.respond(res);
    this.#hooks.completed(this);
    const ack = await dialog.awaitAck(res, this.#tx.responseDest);
    if (ack) dialog.confirmedBy(ack);
    if (!ack && !dialog.ended) {
      // No ACK within 64*T1: the dialog must be torn down (RFC 3261 §13.3.1.4).
      await dialog.bye();
      throw new SipError(408, 'ACK Timeout');
    }
    return dialog;
  }

  /** A final response went out: a CANCEL can no longer apply, so the call logic's CANCEL handlers are dropped. */
  #forgetCancelHandlers(): void {
    if (!this.#isCancelled) this.#cancelHandlers = [];
  }

  #response(status: number, opts: ResponseOptions) {
    // RFC 3261 §12.1.1: a dialog-creating response (18x with our To tag, 2xx) copies every Record-Route of the
    // request, in order, so a caller behind record-routing proxies learns the route set its ACK and BYE must take.
    const dialogCreating = status > 100 && status < 300;
    const recordRoutes: HeaderList = dialogCreating
      ? this.#req.headers.getAll('Record-Route').map((v) => ['Record-Route', v] as const)
      : [];
    // A relayed 3xx keeps its Contact: the redirect targets are the response's whole point (§21.3).
    const redirectContacts: HeaderList =
      status >= 300 && status < 400 ? (opts.headers ?? []).filter(([n]) => /^(contact|m)$/i.test(n)) : [];
    return this.#ctx.tx.buildResponse(this.#req, status, opts.reason, {
      toTag: status > 100 ? this.#localTag : undefined,
      headers: [...recordRoutes, ...redirectContacts, ...passThroughHeaders(opts.headers)],
      body: opts.body,
      contentType: opts.body?.length ? (opts.contentType ?? 'application/sdp') : undefined,
    });
  }
}

function safeUser(headerValue: string): string {
  try {
    return parseNameAddr(headerValue).uri.user ?? '';
  } catch {
    return '';
  }
}

/**
 * The remote target from the INVITE's Contact. A missing or unparseable Contact must not stop us from answering
 * (the 200 would never be sent): in-dialog requests then go to the Request-URI's target through `nextHop`.
 */
function contactTarget(req: SipRequest): string {
  const contact = req.headers.getAll('Contact')[0];
  if (contact) {
    try {
      return parseNameAddr(contact).rawUri;
    } catch {
      // fall through
    }
  }
  return req.uri;
}
