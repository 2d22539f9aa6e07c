/**
 * Requests from the network and the client's responses to them (drachtio-server: controller.cpp, for new requests
 * pending-request-controller.cpp processNewRequest; in a dialog sip-dialog-controller.cpp processRequestInsideDialog
 * and processCancelOrAck; the client's answer doRespondToSipRequest).
 */
import type { SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { newTag } from '../../../src/sip/embedded/ids.ts';
import type { ServerTransaction } from '../../../src/sip/embedded/server-transaction.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction-helpers.ts';
import { getTag, parseNameAddr, withTag } from '../../../src/sip/syntax/address.ts';
import { type AppLink, type DialogRecord, dialogIdOf, type IncomingTxn, type Outcome } from './dialogs.ts';
import { bodyOf, contactFor, copyAppHeaders, setBody } from './messages.ts';
import { belowMinSe, MIN_SE, serverSessionExpires } from './session-timers.ts';
import { raw, type Stack } from './stack.ts';
import { type AppSipMessage, appHeader, newRequestToClient, sentData, sipToClient } from './wire.ts';

/** Headers of a response that come from the request, whatever the client wrote (sofia nta_incoming_treply). */
const FROM_REQUEST = ['from', 'to', 'call-id', 'cseq', 'content-type'];

export class NetworkSide {
  readonly #stack: Stack;
  readonly #routeNew: (method: string) => AppLink | undefined;

  constructor(stack: Stack, routeNew: (method: string) => AppLink | undefined) {
    this.#stack = stack;
    this.#routeNew = routeNew;
    stack.tx.onRequest((req, tx) => this.#request(req, tx));
    stack.tx.onCancel((inviteTx, cancel) => this.#cancel(inviteTx, cancel));
  }

  #request(req: SipRequest, tx: ServerTransaction | null): void {
    if (req.method === 'ACK') {
      this.#ack(req);
      return;
    }
    if (!tx) return;
    if (getTag(req.headers.get('To') ?? '')) {
      this.#inDialog(req, tx);
      return;
    }
    const owner = this.#routeNew(req.method);
    if (!owner) {
      // processNewRequest: "No providers available" for a method no client routed.
      tx.respond(buildResponse(req, 503));
      return;
    }
    const entry: IncomingTxn = { id: this.#stack.newId(), owner, tx, req, localTag: newTag() };
    if (req.method === 'INVITE') {
      entry.dialog = this.#uasDialog(entry);
      entry.creates = true;
    }
    this.#stack.incoming.set(entry.id, entry);
    const local = this.#stack.localMeta();
    const receivedOn = { source: 'network' as const, protocol: tx.source.transport, ...local };
    owner.send(newRequestToClient(this.#stack.networkMeta(req), raw(req), entry.id, receivedOn));
  }

  /** The UAS dialog an INVITE would set up (sip-dialog.cpp, SipDialog for an incoming INVITE). */
  #uasDialog(entry: IncomingTxn): DialogRecord {
    const { req, tx } = entry;
    const callId = req.headers.get('Call-ID') ?? '';
    const from = req.headers.get('From') ?? '';
    const remoteTag = getTag(from) ?? '';
    const contact = req.headers.get('Contact');
    return {
      id: dialogIdOf(callId, remoteTag),
      role: 'uas',
      owner: entry.owner,
      callId,
      localTag: entry.localTag,
      remoteTag,
      local: withTag(req.headers.get('To') ?? '', entry.localTag),
      remote: from,
      localSeq: 0,
      remoteTarget: contact ? parseNameAddr(contact).rawUri : req.uri,
      routeSet: req.headers.getAll('Record-Route'),
      contact: contactFor(this.#stack.local, tx.source.transport),
      transport: tx.source.transport,
      source: tx.source,
    };
  }

  #inDialog(req: SipRequest, tx: ServerTransaction): void {
    const d = this.#stack.dialogOf(req, 'To');
    if (!d) {
      // processRequestInsideDialog: "unable to find Dialog for leg" → 481.
      tx.respond(buildResponse(req, 481));
      return;
    }
    if (belowMinSe(req)) {
      tx.respond(buildResponse(req, 422, 'Session Interval Too Small', { headers: [['Min-SE', String(MIN_SE)]] }));
      return;
    }
    const contact = req.headers.get('Contact');
    if (contact && (req.method === 'INVITE' || req.method === 'UPDATE')) d.remoteTarget = parseNameAddr(contact).rawUri;
    const entry: IncomingTxn = { id: this.#stack.newId(), owner: d.owner, tx, req, dialog: d, localTag: d.localTag };
    this.#stack.incoming.set(entry.id, entry);
    // route_request_inside_dialog: a BYE ends the dialog when it arrives (the client still answers it).
    if (req.method === 'BYE') this.#stack.removeDialog(d);
    d.owner.send(sipToClient(this.#stack.networkMeta(req), raw(req), entry.id, d.id));
  }

  /** An ACK for a 2xx (ACKs for other finals stay in the transaction layer): processRequestInsideDialog, ACK. */
  #ack(req: SipRequest): void {
    const d = this.#stack.dialogOf(req, 'To');
    if (!d) return;
    d.stopRetransmit?.();
    d.stopRetransmit = undefined;
    // The ACK of the INVITE that set the dialog up keeps that INVITE's transaction id; others get a new one.
    const txnId = d.inviteTxnId ?? this.#stack.newId();
    d.inviteTxnId = undefined;
    d.owner.send(sipToClient(this.#stack.networkMeta(req), raw(req), txnId, d.id));
  }

  /**
   * sofia-sip answers the CANCEL 200 and the INVITE 487 itself; the client then gets the CANCEL with the INVITE's
   * transaction and dialog ids (processCancelOrAck → route_request_inside_invite).
   */
  #cancel(inviteTx: ServerTransaction, cancel: SipRequest): void {
    const entry = [...this.#stack.incoming.values()].find((e) => e.tx === inviteTx);
    const invite = inviteTx.request; // released only by a final response, and a CANCEL after that never gets here
    if (invite) inviteTx.respond(buildResponse(invite, 487, undefined, { toTag: entry?.localTag ?? newTag() }));
    if (!entry) return;
    this.#stack.incoming.delete(entry.id);
    entry.owner.send(sipToClient(this.#stack.networkMeta(cancel), raw(cancel), entry.id, entry.dialog?.id ?? ''));
  }

  /** The client's response to a request it was handed (doRespondToSipRequest). */
  respond(txnId: string, app: AppSipMessage): Outcome {
    const entry = this.#stack.incoming.get(txnId);
    if (!entry) {
      const cancel = /\bCANCEL\s*$/i.test(appHeader(app, 'CSeq') ?? '');
      return {
        ok: false,
        reason: cancel
          ? '200 OK to incoming CANCEL is automatically generated by the stack'
          : 'Response not sent due to unknown transaction',
      };
    }
    const m = /^SIP\/2\.0\s+(\d{3})(?:\s+(.*))?$/.exec(app.startLine);
    if (!m) return { ok: false, reason: `bad status line: ${app.startLine}` };
    const status = Number(m[1]);
    const res = this.#buildResponse(entry, status, m[2], app);
    entry.tx.respond(res);
    if (status >= 200) this.#stack.incoming.delete(txnId);
    if (entry.creates && status >= 200 && status < 300) this.#confirm(entry, res);
    const data = sentData(this.#stack.sentMeta(entry.tx.responseDest), raw(res), txnId, entry.dialog?.id ?? '');
    return { ok: true, data };
  }

  #buildResponse(entry: IncomingTxn, status: number, reason: string | undefined, app: AppSipMessage): SipResponse {
    const res = buildResponse(entry.req, status, reason || undefined, { toTag: entry.localTag });
    copyAppHeaders(app, res.headers, FROM_REQUEST, this.#stack.local.host);
    const isInvite = entry.req.method === 'INVITE' || entry.req.method === 'SUBSCRIBE';
    const inDialog = getTag(entry.req.headers.get('To') ?? '') !== undefined;
    // Our Contact on a 2xx to an INVITE, and on every response to one inside a dialog, unless the client set one.
    if (isInvite && (inDialog || (status >= 200 && status < 300)) && !res.headers.has('Contact')) {
      res.headers.append('Contact', entry.dialog?.contact ?? contactFor(this.#stack.local, entry.tx.source.transport));
    }
    if (entry.creates && status === 200 && !res.headers.has('Session-Expires')) {
      const se = serverSessionExpires(entry.req);
      if (se) res.headers.append('Session-Expires', se);
    }
    const body = bodyOf(app);
    setBody(res.headers, body);
    res.body = body.body;
    return res;
  }

  /**
   * A 2xx to an INVITE puts the dialog in the table and is retransmitted until the ACK (timers G and H); without an
   * ACK the server BYEs the peer and tells the client (endRetransmitFinalResponse).
   */
  #confirm(entry: IncomingTxn, res: SipResponse): void {
    const d = entry.dialog;
    if (!d) return;
    d.inviteTxnId = entry.id;
    this.#stack.addDialog(d);
    let acked = false;
    const stop = this.#stack.tx.retransmit2xxUntilAck(
      res,
      entry.tx.responseDest,
      () => acked,
      () => this.#stack.unsolicitedBye(d, 'SIP ;cause=200 ;text="ACK timeout"'),
    );
    d.stopRetransmit = () => {
      acked = true;
      stop();
    };
  }
}
