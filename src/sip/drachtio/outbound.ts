/**
 * An outbound INVITE through drachtio-srf's createUAC, seen through the port's OutboundCall. drachtio-server does
 * the transaction work (retransmissions, digest challenges, ACK); we add what the port promises on top: CANCEL via
 * the request handed to cbRequest (remembered if asked for before that request exists), a ring timeout, and the
 * CANCEL/200 race — a 2xx after we gave up is already ACKed by drachtio-srf, so we BYE it.
 */
import type { Logger } from '../../logger.ts';
import type { Dialog, HeaderList, OutboundCall, OutboundInviteOptions, ProvisionalResponse } from '../port.ts';
import { SipError } from '../port.ts';
import { DrachtioDialog, type DrachtioDialogHooks } from './dialog.ts';
import { bodyOf, contentTypeHeader, fromSrfHeaders, toSipError, toSrfHeaders } from './messages.ts';
import { quoteDisplayName } from '../syntax/address.ts';
import type {
  SrfDeferredAck,
  SrfDialog,
  SrfLike,
  SrfResponseMessage,
  SrfSentRequest,
  SrfUacOptions,
} from './srf-types.ts';

export interface OutboundHooks extends DrachtioDialogHooks {
  addDialog(d: DrachtioDialog): void;
  /** The INVITE got its final response (or we stopped waiting for it). */
  completed(call: DrachtioOutboundCall): void;
}

function formatAddress(a: { uri: string; displayName?: string }): string {
  return `${a.displayName ? `${quoteDisplayName(a.displayName)} ` : ''}<${a.uri}>`;
}

export class DrachtioOutboundCall implements OutboundCall {
  readonly result: Promise<Dialog>;
  readonly #opts: OutboundInviteOptions;
  readonly #hooks: OutboundHooks;
  readonly #logger: Logger;
  #provisionalHandlers: Array<(res: ProvisionalResponse) => void> = [];
  #resolveResult!: (d: Dialog) => void;
  #rejectResult!: (e: SipError) => void;
  #settled = false;
  #finalReceived = false;
  /** Why we gave up before a final response; a 2xx after that is BYEd. */
  #abandoned: 'cancel' | 'timeout' | undefined;
  #sentRequest: SrfSentRequest | undefined;
  #cancelSent = false;
  #cancelHeaders: HeaderList | undefined;
  #ringTimer: NodeJS.Timeout | undefined;

  constructor(srf: SrfLike, opts: OutboundInviteOptions, hooks: OutboundHooks) {
    this.#opts = opts;
    this.#hooks = hooks;
    this.#logger = hooks.logger;
    this.result = new Promise<Dialog>((resolve, reject) => {
      this.#resolveResult = resolve;
      this.#rejectResult = reject;
    });
    // Callers may attach handlers later; never let a rejection be reported as unhandled.
    this.result.catch(() => undefined);
    if (opts.timeoutMs) {
      this.#ringTimer = setTimeout(
        () => this.#abandon('timeout', new SipError(408, 'Request Timeout')),
        opts.timeoutMs,
      );
    }
    this.#launch(srf);
  }

  /** drachtio-server picks the Call-ID; it is known once the INVITE went out (cbRequest), '' before. */
  get callId(): string {
    return this.#sentRequest?.get('Call-ID') ?? '';
  }

  onProvisional(cb: (res: ProvisionalResponse) => void): void {
    this.#provisionalHandlers.push(cb);
  }

  cancel(opts: { headers?: HeaderList } = {}): void {
    this.#cancelHeaders = opts.headers;
    this.#abandon('cancel', new SipError(487, 'Request Terminated'));
  }

  #launch(srf: SrfLike): void {
    const opts = this.#opts;
    // drachtio-server picks the transport from a URI parameter; it does its own TLS (certificates in its config).
    const tp = opts.transport === 'tcp' || opts.transport === 'tls' ? `;transport=${opts.transport}` : '';
    const body = opts.body ?? Buffer.alloc(0);
    const uacOpts: SrfUacOptions = {
      headers: toSrfHeaders(opts.headers, {
        From: formatAddress(opts.from),
        To: formatAddress(opts.to ?? { uri: opts.uri }),
        ...(opts.maxForwards !== undefined ? { 'Max-Forwards': String(opts.maxForwards) } : {}),
        ...contentTypeHeader(body, opts.contentType),
      }),
    };
    if (body.length) uacOpts.localSdp = body.toString('utf8');
    // Without an offer drachtio-srf would ACK the 2xx with a recvonly copy of the answer (its 3pcc mode); take the
    // ACK into our hands instead and send it bare, as the embedded engine does.
    else uacOpts.noAck = true;
    if (opts.proxy) uacOpts.proxy = `sip:${opts.proxy}${tp}`;
    if (opts.auth) uacOpts.auth = { username: opts.auth.username, password: opts.auth.password };
    // Without a proxy, drachtio-server takes the transport from the Request-URI.
    const uri =
      !opts.proxy && tp && !/;transport=/i.test(opts.uri) && !opts.uri.includes('?') ? `${opts.uri}${tp}` : opts.uri;
    this.#send(srf, uri, uacOpts);
  }

  #send(srf: SrfLike, uri: string, uacOpts: SrfUacOptions): void {
    const callbacks = {
      cbRequest: (err: unknown, req?: SrfSentRequest) => this.#handleSent(err, req),
      cbProvisional: (res: SrfResponseMessage) => this.#handleProvisional(res),
    };
    try {
      // Callback form (srf-types.ts): a BYE read right after the 2xx must find our listeners on the Dialog.
      srf.createUAC(uri, uacOpts, callbacks, (err, answered) => {
        if (!err && answered) return this.#handleAnswer(answered);
        this.#finalReceived = true;
        const e = toSipError(err);
        // A final failure from the peer; a local one (no connection to drachtio-server) crossed no wire.
        if ((err as { res?: unknown } | undefined)?.res) this.#hooks.traffic.in(e.status);
        this.#fail(e);
      });
    } catch (err) {
      this.#logger.warn({ err, uri }, 'drachtio-srf refused the INVITE');
      this.#finalReceived = true;
      this.#fail(toSipError(err));
    }
  }

  #handleSent(err: unknown, req: SrfSentRequest | undefined): void {
    if (err || !req) return; // createUAC rejects as well; that settles the call
    this.#hooks.traffic.out('INVITE');
    this.#sentRequest = req;
    if (this.#abandoned) this.#sendCancel();
  }

  #handleProvisional(res: SrfResponseMessage): void {
    this.#hooks.traffic.in(res.status);
    // drachtio-srf PRACKs a reliable provisional (RSeq) on its own (srf.js createUAC).
    if (res.has('RSeq')) this.#hooks.traffic.out('PRACK');
    if (res.status <= 100 || this.#abandoned || this.#settled) return;
    const p: ProvisionalResponse = {
      status: res.status,
      reason: res.reason ?? '',
      headers: fromSrfHeaders(res.headers),
      body: bodyOf(res),
      contentType: res.get('Content-Type') ?? undefined,
    };
    for (const cb of this.#provisionalHandlers) cb(p);
  }

  #handleAnswer(answered: SrfDialog | SrfDeferredAck): void {
    this.#finalReceived = true;
    clearTimeout(this.#ringTimer);
    this.#hooks.completed(this);
    this.#hooks.traffic.in(200);
    // A Dialog has an `ack` method too (drachtio-srf adds one per SIP method), so tell them apart by `sip`.
    if ('sip' in answered) {
      this.#hooks.traffic.out('ACK'); // drachtio-srf ACKed the 2xx
      this.#take(answered);
      return;
    }
    if (this.#opts.deferAck && !this.#abandoned) {
      // Delayed offer: the ACK waits for the caller's answer (DrachtioDialog.ack sends it).
      const dialog = new DrachtioDialog({ deferred: answered, callId: this.callId }, 'application/sdp', this.#hooks);
      this.#hooks.addDialog(dialog);
      this.#settled = true;
      this.#resolveResult(dialog);
      return;
    }
    // No offer of ours and no answer to give: ACK it bare.
    answered.ack().then(
      (dlg) => {
        this.#hooks.traffic.out('ACK');
        this.#take(dlg);
      },
      (err: unknown) => {
        this.#logger.warn({ err }, 'cannot confirm the answered INVITE');
        this.#fail(toSipError(err));
      },
    );
  }

  #take(dlg: SrfDialog): void {
    if (this.#abandoned) {
      this.#byeUnwanted(dlg);
      return;
    }
    const dialog = new DrachtioDialog(dlg, dlg.res?.get('Content-Type') ?? undefined, this.#hooks);
    this.#hooks.addDialog(dialog);
    this.#settled = true;
    this.#resolveResult(dialog);
  }

  /**
   * The CANCEL/200 race or a 2xx after the ring timeout: nobody waits for this dialog. Once we asked for a CANCEL,
   * drachtio-server marks the INVITE and BYEs a 2xx that crosses it right after our ACK, telling us with an
   * unsolicited BYE (sip-dialog-controller.cpp processResponseOutsideDialog doAckBye, notifyTerminateStaleDialog);
   * a BYE of ours would find no dialog left. Without a CANCEL on the wire the BYE is ours to send.
   */
  #byeUnwanted(dlg: SrfDialog): void {
    const byServer = this.#cancelSent;
    this.#logger.info({ callId: dlg.sip.callId, why: this.#abandoned, byServer }, 'unwanted 2xx: BYE');
    if (byServer) return;
    this.#hooks.traffic.out('BYE');
    dlg.destroy({ headers: { Reason: 'SIP;cause=487;text="Request Terminated"' } }).catch((err: unknown) => {
      this.#logger.warn({ err, callId: dlg.sip.callId }, 'BYE of an unwanted 2xx failed');
    });
  }

  #abandon(why: 'cancel' | 'timeout', err: SipError): void {
    if (this.#finalReceived || this.#abandoned) return;
    this.#abandoned = why;
    this.#fail(err);
    this.#sendCancel();
  }

  #sendCancel(): void {
    if (this.#cancelSent || this.#finalReceived || !this.#sentRequest) return;
    this.#cancelSent = true;
    const headers = toSrfHeaders((this.#cancelHeaders ?? []).filter(([n]) => /^(reason|x-)/i.test(n)));
    try {
      this.#sentRequest.cancel({ headers }, (err) => {
        if (err) this.#logger.warn({ err, callId: this.callId }, 'CANCEL failed');
      });
      this.#hooks.traffic.out('CANCEL');
    } catch (err) {
      this.#logger.warn({ err, callId: this.callId }, 'CANCEL could not be sent');
    }
  }

  #fail(err: SipError): void {
    this.#hooks.completed(this);
    if (this.#settled) return;
    this.#settled = true;
    clearTimeout(this.#ringTimer);
    this.#rejectResult(err);
  }
}
