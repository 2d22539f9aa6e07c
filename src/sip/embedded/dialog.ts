/**
 * An INVITE dialog (RFC 3261 §12) of the embedded engine, for either role. It sends in-dialog requests (with the
 * route set and the remote target), receives them in CSeq order, answers BYE itself, retransmits 2xx to a
 * re-INVITE until the ACK arrives, and ACKs 2xx to re-INVITEs it sent.
 */
import type {
  Dialog,
  DialogEnd,
  DialogResponse,
  HeaderList,
  InDialogRequest,
  InDialogRequestOptions,
  ResponseOptions,
  SipBody,
} from '../port.ts';
import { SipError } from '../port.ts';
import { parseNameAddr } from '../syntax/address.ts';
import { parseCSeq } from './cseq.ts';
import { type DialogState, dialogKey, requestTarget, wrapResponse } from './dialog-state.ts';
import type { SipEndpoint, SipRequest, SipResponse, SipTransportName } from './message.ts';
import type { ServerTransaction } from './transaction.ts';
import {
  buildRequest,
  contactValue,
  headerAccess,
  passThroughHeaders,
  transactWithAuth,
  type UaContext,
} from './ua-core.ts';

/** Methods whose 2xx/request carries a Contact that refreshes the remote target. */
const TARGET_REFRESH = new Set(['INVITE', 'UPDATE']);

export class EmbeddedDialog implements Dialog {
  readonly id: string;
  readonly #ctx: UaContext;
  readonly #state: DialogState;
  readonly #resolveNextHop: (uri: string, transport: SipTransportName) => Promise<SipEndpoint>;
  readonly #onGone: (d: EmbeddedDialog) => void;
  #requestHandler: ((req: InDialogRequest) => void) | undefined;
  #endHandlers: Array<(end: DialogEnd) => void> = [];
  #pendingAcks = new Map<number, (ack?: SipRequest) => void>();
  /** CSeq of our initial INVITE whose 2xx waits for the caller's answer before we ACK it (delayed offer). */
  #deferredAck: number | undefined;
  #ackBody: SipBody = { body: Buffer.alloc(0) };
  #lastAck: { cseq: number; ack: SipRequest; dest: SipEndpoint } | undefined;
  #isEnded = false;
  /** An INVITE transaction in progress on this dialog, sent by us / by the peer (RFC 3261 §14: one at a time). */
  #inviteOut = false;
  #inviteIn = false;

  constructor(
    ctx: UaContext,
    state: DialogState,
    resolveNextHop: (uri: string, transport: SipTransportName) => Promise<SipEndpoint>,
    onGone: (d: EmbeddedDialog) => void,
  ) {
    this.#ctx = ctx;
    this.#state = state;
    this.#resolveNextHop = resolveNextHop;
    this.#onGone = onGone;
    this.id = dialogKey(state.callId, state.localTag, state.remoteTag);
  }

  get callId(): string {
    return this.#state.callId;
  }
  get remoteTag(): string {
    return this.#state.remoteTag;
  }
  get remoteBody(): Buffer {
    return this.#state.remoteBody;
  }
  get remoteContentType(): string | undefined {
    return this.#state.remoteContentType;
  }
  get remoteHeaders(): HeaderList | undefined {
    return this.#state.remoteHeaders;
  }
  get ackBody(): SipBody {
    return this.#ackBody;
  }
  get ended(): boolean {
    return this.#isEnded;
  }

  onRequest(cb: (req: InDialogRequest) => void): void {
    this.#requestHandler = cb;
  }
  onEnd(cb: (end: DialogEnd) => void): void {
    this.#endHandlers.push(cb);
  }

  async request(method: string, opts: InDialogRequestOptions = {}): Promise<DialogResponse> {
    if (this.#isEnded) throw new SipError(481, 'Call/Transaction Does Not Exist');
    const isInvite = method === 'INVITE';
    // §14.1: no new re-INVITE while one is in progress in either direction; the asker gets 491 and retries later.
    if (isInvite && (this.#inviteOut || this.#inviteIn)) throw new SipError(491, 'Request Pending');
    if (isInvite) this.#inviteOut = true;
    let response: SipResponse;
    let request: SipRequest;
    try {
      const req = this.#build(method, opts);
      const dest = await this.#destination();
      ({ response, request } = await transactWithAuth(
        this.#ctx,
        req,
        dest,
        this.#state.auth,
        () => ++this.#state.localCSeq,
      ));
    } finally {
      if (isInvite) this.#inviteOut = false;
    }
    const dest = await this.#destination();
    if (method === 'INVITE' && response.status >= 200 && response.status < 300) {
      this.#refreshTarget(response);
      const seq = parseCSeq(request.headers.get('CSeq') ?? '').seq;
      if (opts.deferAck) {
        let sent = false;
        const ack = (answer: SipBody): void => {
          if (sent || this.#isEnded) return;
          sent = true;
          this.#sendAck(seq, dest, answer);
        };
        return { ...wrapResponse(response), ack };
      }
      this.#sendAck(seq, dest);
    }
    return wrapResponse(response);
  }

  ack(answer: SipBody): void {
    this.#sendDeferredAck(answer).catch((err: unknown) => {
      this.#ctx.logger.warn({ err, callId: this.callId }, 'cannot send ACK');
    });
  }

  /** The initial 2xx's ACK, held back for the caller's answer (delayed offer). */
  deferInitialAck(cseq: number): void {
    this.#deferredAck = cseq;
  }

  async #sendDeferredAck(answer: SipBody): Promise<void> {
    const cseq = this.#deferredAck;
    if (cseq === undefined) return;
    this.#deferredAck = undefined;
    this.#sendAck(cseq, await this.#destination(), answer);
  }

  async bye(opts: { headers?: HeaderList } = {}): Promise<void> {
    if (this.#isEnded) return;
    // A 2xx still waiting for its (delayed-offer) ACK is ACKed first: the INVITE transaction must complete.
    await this.#sendDeferredAck({}).catch(() => undefined);
    const req = this.#build('BYE', opts);
    this.#finish({ by: 'local', headers: opts.headers ?? [] });
    try {
      const dest = await this.#destination();
      await transactWithAuth(this.#ctx, req, dest, this.#state.auth, () => ++this.#state.localCSeq);
    } catch (err) {
      this.#ctx.logger.warn({ err, callId: this.callId }, 'BYE could not be sent');
    }
  }

  /** A request inside this dialog, already matched by the engine. `tx` is null for ACK. */
  handleRequest(req: SipRequest, tx: ServerTransaction | null): void {
    if (req.method === 'ACK') {
      const seq = safeCSeq(req);
      this.#pendingAcks.get(seq)?.(req);
      this.#pendingAcks.delete(seq);
      return;
    }
    if (!tx) return;
    const seq = safeCSeq(req);
    if (seq <= this.#state.remoteCSeq && req.method !== 'CANCEL') {
      tx.respond(this.#ctx.tx.buildResponse(req, 500, 'Server Internal Error', { headers: [['Retry-After', '1']] }));
      return;
    }
    this.#state.remoteCSeq = seq;
    if (req.method === 'BYE') {
      tx.respond(this.#ctx.tx.buildResponse(req, 200, 'OK'));
      this.#finish({ by: 'remote', reason: req.headers.get('Reason'), headers: req.headers.lines() });
      return;
    }
    if (this.#isEnded) {
      tx.respond(this.#ctx.tx.buildResponse(req, 481, 'Call/Transaction Does Not Exist'));
      return;
    }
    if (!this.#requestHandler) {
      const status = req.method === 'OPTIONS' ? 200 : 501;
      tx.respond(this.#ctx.tx.buildResponse(req, status));
      return;
    }
    if (req.method === 'INVITE') {
      // Glare (§14.2): our own re-INVITE is pending → 491; a second one from the peer before we answered → 500.
      if (this.#inviteOut) {
        tx.respond(this.#ctx.tx.buildResponse(req, 491, 'Request Pending'));
        return;
      }
      if (this.#inviteIn) {
        tx.respond(this.#ctx.tx.buildResponse(req, 500, 'Server Internal Error', { headers: [['Retry-After', '1']] }));
        return;
      }
      this.#inviteIn = true;
    }
    if (TARGET_REFRESH.has(req.method)) this.#refreshTarget(req);
    let answered = false;
    let acked: Promise<SipBody | undefined> = Promise.resolve(undefined);
    this.#requestHandler({
      method: req.method,
      body: req.body,
      contentType: req.headers.get('Content-Type'),
      ...headerAccess(req.headers),
      respond: (status, opts) => {
        if (answered) return;
        if (status >= 200) {
          answered = true;
          if (req.method === 'INVITE') this.#inviteIn = false;
        }
        acked = this.#respondInDialog(req, tx, status, opts);
      },
      awaitAck: () => acked,
    });
  }

  /** A retransmitted 2xx to an INVITE we sent: re-send the same ACK (RFC 3261 §13.2.2.4). */
  handleRetransmitted2xx(res: SipResponse): void {
    const seq = parseCSeq(res.headers.get('CSeq') ?? '').seq;
    if (this.#lastAck && this.#lastAck.cseq === seq) this.#ctx.sendRaw(this.#lastAck.ack, this.#lastAck.dest);
  }

  /** Confirm the dialog from the UAC side: ACK the initial 2xx. */
  async ackInitial(cseq: number): Promise<void> {
    this.#sendAck(cseq, await this.#destination());
  }

  /** UAS side: the ACK that confirmed the dialog (its body is the answer of a delayed offer). */
  confirmedBy(ack: SipRequest): void {
    this.#ackBody = ack.body.length ? { body: ack.body, contentType: ack.headers.get('Content-Type') } : this.#ackBody;
  }

  /**
   * Retransmit a 2xx until its ACK (RFC 3261 §13.3.1.4); resolves with the ACK, or undefined after 64*T1.
   * The first copy was already sent by the server transaction. Used for the initial 200 and 2xx to re-INVITEs.
   */
  awaitAck(res: SipResponse, dest: SipEndpoint): Promise<SipRequest | undefined> {
    const seq = parseCSeq(res.headers.get('CSeq') ?? '').seq;
    return new Promise((resolve) => {
      let acked = false;
      // Stopped as soon as the ACK (or the dialog's end) arrives: the retransmission timers hold this dialog.
      const stop = this.#ctx.tx.retransmit2xxUntilAck(
        res,
        dest,
        () => acked || this.#isEnded,
        () => {
          this.#pendingAcks.delete(seq);
          resolve(undefined);
        },
      );
      this.#pendingAcks.set(seq, (ack) => {
        acked = true;
        stop();
        resolve(ack);
      });
    });
  }

  /** Answers an in-dialog request; for a 2xx to an INVITE, resolves with its ACK's body once it arrives. */
  #respondInDialog(
    req: SipRequest,
    tx: ServerTransaction,
    status: number,
    opts: ResponseOptions = {},
  ): Promise<SipBody | undefined> {
    const res = this.#ctx.tx.buildResponse(req, status, opts.reason, {
      headers: passThroughHeaders(opts.headers),
      body: opts.body,
      contentType: opts.body?.length ? (opts.contentType ?? 'application/sdp') : undefined,
    });
    if (status >= 200 && status < 300 && (req.method === 'INVITE' || req.method === 'UPDATE')) {
      res.headers.append('Contact', contactValue(this.#ctx, this.#state.transport, this.#state.peer, req.uri));
    }
    tx.respond(res);
    if (req.method !== 'INVITE' || status < 200 || status >= 300) return Promise.resolve(undefined);
    return this.awaitAck(res, tx.responseDest).then((ack) =>
      ack ? { body: ack.body, contentType: ack.headers.get('Content-Type') } : undefined,
    );
  }

  #build(method: string, opts: SipBody & { headers?: HeaderList }): SipRequest {
    const { uri, routes } = requestTarget(this.#state.remoteTarget, this.#state.routeSet);
    return buildRequest(this.#ctx, {
      method,
      uri,
      transport: this.#state.transport,
      peer: this.#state.peer,
      from: this.#state.localAddress,
      to: this.#state.remoteAddress,
      callId: this.#state.callId,
      cseq: ++this.#state.localCSeq,
      routes,
      contact: TARGET_REFRESH.has(method),
      headers: opts.headers,
      body: opts.body,
      contentType: opts.contentType,
    });
  }

  async #destination(): Promise<SipEndpoint> {
    if (this.#state.nextHop) return this.#state.nextHop;
    const first = this.#state.routeSet[0];
    const uri = first ? parseNameAddr(first).rawUri : this.#state.remoteTarget;
    return this.#resolveNextHop(uri, this.#state.transport);
  }

  #sendAck(cseq: number, dest: SipEndpoint, answer?: SipBody): void {
    const { uri, routes } = requestTarget(this.#state.remoteTarget, this.#state.routeSet);
    const ack = buildRequest(this.#ctx, {
      method: 'ACK',
      uri,
      transport: this.#state.transport,
      peer: this.#state.peer,
      from: this.#state.localAddress,
      to: this.#state.remoteAddress,
      callId: this.#state.callId,
      cseq,
      routes,
      body: answer?.body,
      contentType: answer?.contentType,
    });
    this.#lastAck = { cseq, ack, dest };
    this.#ctx.sendRaw(ack, dest);
  }

  #refreshTarget(msg: SipRequest | SipResponse): void {
    const contact = msg.headers.getAll('Contact')[0];
    if (!contact) return;
    try {
      this.#state.remoteTarget = parseNameAddr(contact).rawUri;
    } catch {
      // A malformed Contact in a refresh keeps the previous target rather than breaking the dialog.
    }
  }

  #finish(end: DialogEnd): void {
    if (this.#isEnded) return;
    this.#isEnded = true;
    for (const resolveAck of this.#pendingAcks.values()) resolveAck();
    this.#pendingAcks.clear();
    this.#onGone(this);
    const handlers = this.#endHandlers;
    this.#endHandlers = [];
    this.#requestHandler = undefined;
    for (const h of handlers) {
      try {
        h(end);
      } catch (err) {
        this.#ctx.logger.error({ err, callId: this.callId }, 'dialog end handler threw');
      }
    }
  }
}

function safeCSeq(req: SipRequest): number {
  try {
    return parseCSeq(req.headers.get('CSeq') ?? '').seq;
  } catch {
    return -1;
  }
}
