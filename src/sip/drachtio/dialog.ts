/**
 * A drachtio-srf Dialog seen through the port's Dialog. drachtio-server answers BYE itself and drachtio-srf then
 * emits 'destroy'; every other in-dialog request arrives as an event carrying (req, res) that we must answer, which
 * the call logic does through InDialogRequest.respond (a B2BUA relays them to the other leg).
 */
import type {
  Dialog,
  DialogEnd,
  DialogResponse,
  HeaderList,
  InDialogRequest,
  InDialogRequestOptions,
  SipBody,
} from '../port.ts';
import { SipError } from '../port.ts';
import {
  bodyOf,
  contentTypeHeader,
  fromSrfHeaders,
  headerAccessOf,
  sendResponse,
  toSipError,
  toSrfHeaders,
} from './messages.ts';
import type {
  SrfDeferredAck,
  SrfDialog,
  SrfIncomingRequest,
  SrfMessage,
  SrfResponseMessage,
  SrfServerResponse,
} from './srf-types.ts';
import type { AdapterContext } from './traffic.ts';

/** drachtio-srf Dialog events for in-dialog requests, and the SIP method each stands for ('modify' is a re-INVITE). */
const REQUEST_EVENTS = [
  ['modify', 'INVITE'],
  ['update', 'UPDATE'],
  ['info', 'INFO'],
  ['refer', 'REFER'],
  ['notify', 'NOTIFY'],
  ['message', 'MESSAGE'],
  ['options', 'OPTIONS'],
] as const;

/** Requests whose 2xx must carry our Contact (target refresh); drachtio-srf adds it itself only when it answers. */
const TARGET_REFRESH = new Set(['INVITE', 'UPDATE']);

export interface DrachtioDialogHooks extends AdapterContext {
  removeDialog(d: DrachtioDialog): void;
}

export class DrachtioDialog implements Dialog {
  readonly id: string;
  readonly callId: string;
  readonly remoteBody: Buffer;
  readonly remoteContentType: string | undefined;
  readonly remoteHeaders: HeaderList;
  /** Undefined while a delayed-offer 2xx waits for our ACK (drachtio-srf creates its Dialog only with the ACK). */
  #dlg: SrfDialog | undefined;
  #deferred: SrfDeferredAck | undefined;
  readonly #hooks: DrachtioDialogHooks;
  #requestHandler: ((req: InDialogRequest) => void) | undefined;
  #endHandlers: Array<(end: DialogEnd) => void> = [];
  #endInfo: DialogEnd | undefined;
  #ackBody: SipBody = { body: Buffer.alloc(0) };

  /**
   * `remoteHeaders`: the headers of what set the dialog up as the peer sent it (the INVITE for a UAS dialog; the 2xx,
   * taken from drachtio-srf, for a UAC one), so the call logic sees the far end's session timer (RFC 4028).
   */
  constructor(
    dlg: SrfDialog | { deferred: SrfDeferredAck; callId: string },
    remoteContentType: string | undefined,
    hooks: DrachtioDialogHooks,
    remoteHeaders?: HeaderList,
  ) {
    this.#hooks = hooks;
    if ('deferred' in dlg) {
      this.#deferred = dlg.deferred;
      this.callId = dlg.callId;
      this.id = `${dlg.callId};deferred-ack`;
      this.remoteBody = Buffer.from(dlg.deferred.sdp, 'utf8');
      this.remoteHeaders = remoteHeaders ?? fromSrfHeaders(dlg.deferred.res?.headers);
    } else {
      this.callId = dlg.sip.callId;
      this.id = dlg.id || `${dlg.sip.callId};${dlg.sip.localTag};${dlg.sip.remoteTag}`;
      this.remoteBody = Buffer.from(dlg.remote.sdp ?? '', 'utf8');
      this.remoteHeaders = remoteHeaders ?? fromSrfHeaders(dlg.res?.headers);
      this.#attach(dlg);
    }
    this.remoteContentType = remoteContentType ?? (this.remoteBody.length ? 'application/sdp' : undefined);
  }

  get ackBody(): SipBody {
    return this.#ackBody;
  }

  /** UAS side: the ACK's body (drachtio-srf's 'ack' event), the answer of a delayed offer. */
  confirmedBy(ack: SrfMessage | undefined): void {
    const body = ack ? bodyOf(ack) : Buffer.alloc(0);
    if (body.length) this.#ackBody = { body, contentType: ack?.get('Content-Type') ?? 'application/sdp' };
  }

  /** Delayed offer, UAC side: send the held-back ACK with the answer; drachtio-srf then hands us its Dialog. */
  ack(answer: SipBody): void {
    this.#confirm(answer).catch((err: unknown) => {
      this.#hooks.logger.warn({ err, callId: this.callId }, 'cannot send ACK');
    });
  }

  async #confirm(answer: SipBody): Promise<SrfDialog | undefined> {
    const deferred = this.#deferred;
    if (!deferred) return this.#dlg;
    this.#deferred = undefined;
    const dlg = await deferred.ack(answer.body?.length ? answer.body.toString('utf8') : undefined);
    this.#hooks.traffic.out('ACK');
    this.#attach(dlg);
    return dlg;
  }

  #attach(dlg: SrfDialog): void {
    this.#dlg = dlg;
    for (const [event, method] of REQUEST_EVENTS) {
      dlg.on(event, (req: SrfIncomingRequest, res: SrfServerResponse) => this.#handleRequest(method, req, res));
    }
    dlg.on('destroy', (bye?: SrfIncomingRequest) => {
      // drachtio-srf answered the BYE 200, unless drachtio-server made it up itself (source 'application').
      if (bye?.source !== 'application') {
        this.#hooks.traffic.in('BYE');
        this.#hooks.traffic.out(200);
      }
      this.#finish({ by: 'remote', reason: bye?.get('Reason') ?? undefined, headers: fromSrfHeaders(bye?.headers) });
    });
  }

  get ended(): boolean {
    return this.#endInfo !== undefined;
  }

  onRequest(cb: (req: InDialogRequest) => void): void {
    this.#requestHandler = cb;
  }

  /**
   * Unlike the embedded engine, a handler registered after the end is still told: with drachtio the PBX dialog is
   * created when the 200 is sent, and a BYE can overtake the ACK event before the call logic has subscribed.
   */
  onEnd(cb: (end: DialogEnd) => void): void {
    const end = this.#endInfo;
    if (end) queueMicrotask(() => this.#runEndHandler(cb, end));
    else this.#endHandlers.push(cb);
  }

  request(method: string, opts: InDialogRequestOptions = {}): Promise<DialogResponse> {
    if (this.ended) return Promise.reject(new SipError(481, 'Call/Transaction Does Not Exist'));
    const dlg = this.#dlg;
    // Not confirmed yet (our ACK is still held back): RFC 3261 §14.1 — the peer retries a 491 later.
    if (!dlg) return Promise.reject(new SipError(491, 'Request Pending'));
    const body = opts.body?.length ? opts.body.toString('utf8') : undefined;
    const headers = toSrfHeaders(opts.headers, contentTypeHeader(opts.body, opts.contentType));
    return new Promise<DialogResponse>((resolve, reject) => {
      try {
        // The callback form: it is called for every response, so provisional ones (100 Trying to a re-INVITE)
        // can be skipped; the promise form would settle on the first of them. drachtio-srf ACKs a re-INVITE's 2xx.
        // With noAck and no body drachtio-srf hands the 2xx's ACK to us as a third callback argument.
        const upper = method.toUpperCase();
        const noAck = opts.deferAck === true && upper === 'INVITE' && !body;
        const { traffic } = this.#hooks;
        dlg.request({ method: upper, headers, body, ...(noAck ? { noAck } : {}) }, (err, res, ack) => {
          if (err) return reject(toSipError(err));
          if (!res) return;
          traffic.in(res.status);
          if (res.status < 200) return;
          const response = wrapResponse(res);
          // drachtio-srf ACKs a re-INVITE's final response itself, unless it handed us the ACK (noAck, a 2xx).
          if (noAck && ack && res.status < 300) response.ack = this.#deferredAck(ack);
          else if (upper === 'INVITE' && res.status < 300) traffic.out('ACK');
          resolve(response);
        });
        traffic.out(upper);
      } catch (err) {
        // drachtio-srf asserts the method is a known SIP method, synchronously.
        this.#hooks.logger.warn({ err, method, callId: this.callId }, 'in-dialog request refused by drachtio-srf');
        reject(toSipError(err));
      }
    });
  }

  #deferredAck(ack: (opts: { body?: string }) => void): (answer: SipBody) => void {
    let sent = false;
    return (answer) => {
      if (sent) return;
      sent = true;
      ack({ body: answer.body?.length ? answer.body.toString('utf8') : undefined });
      this.#hooks.traffic.out('ACK');
    };
  }

  async bye(opts: { headers?: HeaderList } = {}): Promise<void> {
    if (this.ended) return;
    // drachtio-srf removes its listeners on destroy() and never emits 'destroy' for a BYE we send: end it here.
    this.#finish({ by: 'local', headers: opts.headers ?? [] });
    try {
      // A 2xx still waiting for its (delayed-offer) ACK is ACKed first: the INVITE transaction must complete.
      const dlg = await this.#confirm({});
      if (!dlg) return;
      this.#hooks.traffic.out('BYE');
      await dlg.destroy({ headers: toSrfHeaders(opts.headers) });
    } catch (err) {
      this.#hooks.logger.warn({ err, callId: this.callId }, 'BYE could not be sent');
    }
  }

  #handleRequest(method: string, req: SrfIncomingRequest, res: SrfServerResponse): void {
    const hooks = this.#hooks;
    hooks.traffic.in(method);
    if (this.ended) {
      sendResponse(res, 481, {}, {}, hooks);
      return;
    }
    const handler = this.#requestHandler;
    if (!handler) {
      // Same answer as the embedded engine when nobody listens; drachtio-srf's own answer (a 200 to a re-INVITE
      // with the SDP it last sent, lib/dialog.js handle) only comes when no 'modify' listener exists, and there is one.
      sendResponse(res, method === 'OPTIONS' ? 200 : 501, {}, {}, hooks);
      return;
    }
    let answered = false;
    // drachtio-srf ACKs nothing for us on the UAS side: a re-INVITE's ACK arrives as the dialog's 'ack' event.
    let acked: Promise<SipBody | undefined> = Promise.resolve(undefined);
    handler({
      method,
      body: bodyOf(req),
      contentType: req.get('Content-Type') ?? undefined,
      ...headerAccessOf(req),
      respond: (status, opts = {}) => {
        if (answered) return;
        if (status >= 200) answered = true;
        const contact = this.#dlg?.local?.contact;
        const ok = status >= 200 && status < 300;
        const extra: Record<string, string> = ok && TARGET_REFRESH.has(method) && contact ? { Contact: contact } : {};
        if (ok && method === 'INVITE') acked = this.#nextAck();
        sendResponse(res, status, opts, extra, hooks);
      },
      awaitAck: () => acked,
    });
  }

  /** The body of the next ACK on this dialog (drachtio-srf's 'ack' event), or undefined after 32 s or at the end. */
  #nextAck(): Promise<SipBody | undefined> {
    const dlg = this.#dlg;
    if (!dlg) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      const done = (ack?: SrfMessage): void => {
        clearTimeout(timer);
        dlg.removeListener('ack', done);
        if (ack) this.#hooks.traffic.in('ACK');
        const body = ack ? bodyOf(ack) : Buffer.alloc(0);
        resolve(ack ? { body, contentType: ack.get('Content-Type') ?? undefined } : undefined);
      };
      const timer = setTimeout(done, 32_000);
      timer.unref();
      dlg.once('ack', done);
    });
  }

  #finish(end: DialogEnd): void {
    if (this.#endInfo) return;
    this.#endInfo = end;
    this.#requestHandler = undefined;
    this.#hooks.removeDialog(this);
    const handlers = this.#endHandlers;
    this.#endHandlers = [];
    for (const h of handlers) this.#runEndHandler(h, end);
  }

  #runEndHandler(h: (end: DialogEnd) => void, end: DialogEnd): void {
    try {
      h(end);
    } catch (err) {
      this.#hooks.logger.error({ err, callId: this.callId }, 'dialog end handler threw');
    }
  }
}

export function wrapResponse(res: SrfResponseMessage): DialogResponse {
  return {
    status: res.status,
    reason: res.reason ?? '',
    body: bodyOf(res),
    contentType: res.get('Content-Type') ?? undefined,
    ...headerAccessOf(res),
  };
}
