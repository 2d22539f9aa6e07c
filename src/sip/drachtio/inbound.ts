/**
 * An out-of-dialog INVITE delivered by drachtio-server, seen through the port's InboundCall. drachtio-server answers
 * a CANCEL 200 and the INVITE 487 itself; drachtio-srf then emits 'cancel' on the request, which is when we tell
 * the call logic. Answering goes through srf.createUAS, which calls back when the 200 is sent; we resolve the port's
 * answer() when the ACK shows up (drachtio-srf's 'ack' event), as the embedded engine does.
 */
import type { Logger } from '../../logger.ts';
import type { Dialog, HeaderList, InboundCall, ResponseOptions, SipPeer } from '../port.ts';
import { SipError } from '../port.ts';
import { parseNameAddr } from '../syntax/address.ts';
import { parseUri } from '../syntax/uri.ts';
import { DrachtioDialog, type DrachtioDialogHooks } from './dialog.ts';
import {
  bodyOf,
  contentTypeHeader,
  headerAccessOf,
  sendResponse,
  toSipError,
  toSrfHeaders,
  transportOf,
} from './messages.ts';
import type { SrfDialog, SrfIncomingRequest, SrfLike, SrfMessage, SrfServerResponse } from './srf-types.ts';

/**
 * How long to wait for drachtio-srf's 'ack' event before trusting the dialog anyway. drachtio-server gives up on a
 * missing ACK after 64*T1 = 32 s and BYEs the dialog itself, which reaches us as 'destroy'; this is only a backstop.
 */
const ACK_WAIT_MS = 40_000;

export interface InboundHooks extends DrachtioDialogHooks {
  addDialog(d: DrachtioDialog): void;
  /** The INVITE got (or is getting) its final response. */
  completed(call: DrachtioInboundCall): void;
}

type State = 'pending' | 'answering' | 'answered' | 'rejected';

export class DrachtioInboundCall implements InboundCall {
  readonly callId: string;
  readonly requestUri: string;
  readonly calledUser: string;
  readonly callingUser: string;
  readonly from: string;
  readonly to: string;
  readonly source: SipPeer;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly header: (name: string) => string | undefined;
  readonly headers: () => HeaderList;
  readonly #srf: SrfLike;
  readonly #req: SrfIncomingRequest;
  readonly #res: SrfServerResponse;
  readonly #hooks: InboundHooks;
  readonly #logger: Logger;
  #state: State = 'pending';
  #isCancelled = false;
  #cancelHandlers: Array<(c: { reason?: string }) => void> = [];

  constructor(srf: SrfLike, req: SrfIncomingRequest, res: SrfServerResponse, hooks: InboundHooks) {
    this.#srf = srf;
    this.#req = req;
    this.#res = res;
    this.#hooks = hooks;
    this.#logger = hooks.logger;
    this.callId = req.get('Call-ID') ?? '';
    this.requestUri = req.uri;
    this.from = req.get('From') ?? '';
    this.to = req.get('To') ?? '';
    this.calledUser = uriUser(req.uri) || addressUser(this.to);
    this.callingUser = addressUser(this.from);
    this.source = { transport: transportOf(req.protocol), address: req.source_address, port: Number(req.source_port) };
    this.body = bodyOf(req);
    this.contentType = req.get('Content-Type') ?? undefined;
    const access = headerAccessOf(req);
    this.header = access.header;
    this.headers = access.headers;
    req.on('cancel', (cancel?: SrfMessage) => this.#handleCancel(cancel));
  }

  get cancelled(): boolean {
    return this.#isCancelled;
  }

  onCancel(cb: (c: { reason?: string }) => void): void {
    if (this.#isCancelled) queueMicrotask(() => cb({}));
    else this.#cancelHandlers.push(cb);
  }

  sendProvisional(status: number, opts: ResponseOptions = {}): void {
    if (this.#state !== 'pending' || this.#isCancelled || status < 101 || status > 199) return;
    sendResponse(this.#res, status, opts, {}, this.#hooks);
  }

  reject(status: number, opts: ResponseOptions = {}): void {
    if (this.#state !== 'pending' || this.#isCancelled) return;
    this.#state = 'rejected';
    // A relayed 3xx keeps its Contact (the redirect targets); toSrfHeaders drops Contact from pass-through headers.
    const contacts =
      status >= 300 && status < 400 ? (opts.headers ?? []).filter(([n]) => /^(contact|m)$/i.test(n)) : [];
    const extra: Record<string, string> = contacts.length ? { Contact: contacts.map(([, v]) => v).join(', ') } : {};
    sendResponse(this.#res, status, opts, extra, this.#hooks);
    this.#hooks.completed(this);
  }

  async answer(opts: ResponseOptions = {}): Promise<Dialog> {
    if (this.#state !== 'pending' || this.#isCancelled) {
      throw new SipError(this.#isCancelled ? 487 : 500, this.#isCancelled ? 'Request Terminated' : 'Already answered');
    }
    this.#state = 'answering';
    this.#hooks.completed(this);
    const sdp = { localSdp: opts.body?.length ? opts.body.toString('utf8') : '' };
    const headers = toSrfHeaders(opts.headers, contentTypeHeader(opts.body, opts.contentType));
    return new Promise<Dialog>((resolve, reject) => {
      let done = false;
      // Callback form (srf-types.ts): the PBX's ACK or BYE may be in the same read as drachtio-server's answer.
      this.#srf.createUAS(this.#req, this.#res, { ...sdp, headers }, (err, dlg) => {
        if (done) return;
        done = true;
        // A CANCEL that overtook the 200 makes drachtio-srf fail with 487.
        if (err || !dlg) return reject(toSipError(err));
        this.#state = 'answered';
        this.#hooks.traffic.out(200);
        // The INVITE's own headers: drachtio-srf's UAS Dialog keeps only its body (remote.sdp).
        const dialog = new DrachtioDialog(dlg, this.contentType, this.#hooks, this.headers());
        this.#hooks.addDialog(dialog);
        resolve(this.#confirmed(dlg, dialog));
      });
    });
  }

  #handleCancel(cancel: SrfMessage | undefined): void {
    // drachtio-srf only emits 'cancel' while the INVITE has no final response on the wire, so 'answering' counts.
    this.#hooks.traffic.in('CANCEL');
    if (this.#isCancelled || this.#state === 'rejected' || this.#state === 'answered') return;
    this.#isCancelled = true;
    if (this.#state === 'pending') this.#hooks.completed(this);
    const reason = cancel?.get('Reason') ?? undefined;
    for (const cb of this.#cancelHandlers.splice(0)) cb({ reason });
  }

  #confirmed(dlg: SrfDialog, dialog: DrachtioDialog): Promise<Dialog> {
    return new Promise<Dialog>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        dlg.removeListener('ack', onAck);
        dlg.removeListener('destroy', onDestroy);
      };
      const onAck = (ack?: SrfMessage) => {
        cleanup();
        this.#hooks.traffic.in('ACK');
        dialog.confirmedBy(ack);
        resolve(dialog);
      };
      const onDestroy = (bye?: { source?: string }) => {
        cleanup();
        // drachtio-server's own BYE after an ACK timeout comes from 'application'; a peer's BYE implies it sent the
        // ACK (we just saw the BYE first), so hand over the dialog, already ended.
        if (bye?.source === 'application') reject(new SipError(408, 'ACK Timeout'));
        else resolve(dialog);
      };
      const timer = setTimeout(() => {
        cleanup();
        this.#logger.warn({ callId: this.callId }, 'no ACK event from drachtio-srf; treating the dialog as confirmed');
        resolve(dialog);
      }, ACK_WAIT_MS);
      timer.unref();
      dlg.once('ack', onAck);
      dlg.once('destroy', onDestroy);
    });
  }
}

function uriUser(uri: string): string {
  try {
    return parseUri(uri).user ?? '';
  } catch {
    return '';
  }
}

function addressUser(headerValue: string): string {
  try {
    return parseNameAddr(headerValue).uri.user ?? '';
  } catch {
    return '';
  }
}
