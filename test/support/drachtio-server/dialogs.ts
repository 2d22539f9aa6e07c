/**
 * Dialogs and transactions as drachtio-server keeps them, by the ids its clients see:
 * - a transaction id per request (a UUID: sip-dialog-controller.cpp generateUuid), by which a client answers a
 *   request it was handed or hears the responses to one it sent;
 * - a dialog id `<Call-ID>;from-tag=<tag of the From header>` (sip-dialog.hpp getDialogId: the local tag for a UAC
 *   dialog, the remote one for a UAS dialog), by which a client sends in-dialog requests (drachtio-srf
 *   Srf#findDialogByCallIDAndFromTag relies on this shape).
 * A dialog enters the table when its INVITE gets a 200 (doRespondToSipRequest addDialog / processResponseOutsideDialog
 * addDialog) and leaves it with a BYE.
 */
import { parseCSeq } from '../../../src/sip/embedded/cseq.ts';
import type { SipEndpoint, SipRequest, SipResponse, SipTransportName } from '../../../src/sip/embedded/message.ts';
import type { ClientTransaction } from '../../../src/sip/embedded/client-transaction.ts';
import type { ServerTransaction } from '../../../src/sip/embedded/server-transaction.ts';
import { requestTarget } from '../../../src/sip/embedded/dialog-state.ts';
import { parseNameAddr } from '../../../src/sip/syntax/address.ts';
import { endpointOf, type LocalAddress, newRequest } from './messages.ts';

/** The answer to a client's `sip` message; `after` runs once that answer is on its way. */
export type Outcome = { ok: true; data: string; after?: () => void } | { ok: false; reason: string };

/** The client connection a transaction or dialog belongs to. */
export interface AppLink {
  send(text: string): void;
}

export interface DialogRecord {
  id: string;
  role: 'uas' | 'uac';
  owner: AppLink;
  callId: string;
  localTag: string;
  remoteTag: string;
  /** Our From (UAC) or To (UAS) header value, tag included. */
  local: string;
  remote: string;
  localSeq: number;
  remoteTarget: string;
  /** Route headers for requests we send (RFC 3261 §12.1: Record-Route as is for a UAS, reversed for a UAC). */
  routeSet: string[];
  contact: string;
  transport: SipTransportName;
  /**
   * UAS: where the INVITE came from (its TCP connection). drachtio-server sends in-dialog requests on the INVITE's
   * transport (sip-dialog.cpp m_tp, forceTport) and to the source address when the Contact differs from it (its
   * UDP NAT detection); both come down to the INVITE's source without a Record-Route.
   */
  source?: SipEndpoint;
  /** UAC: the 2xx to our INVITE (or re-INVITE) the client must ACK; its CSeq number (sip-dialog.hpp m_seq). */
  ackSeq?: number;
  /** The last ACK sent, resent when the 2xx is retransmitted (sip-dialog-controller.cpp m_timerDHandler). */
  lastAck?: { msg: SipRequest; dest: SipEndpoint };
  /** A 2xx that crossed our CANCEL: ACK it, then BYE (processResponseOutsideDialog doAckBye). */
  ackBye?: boolean;
  /** UAS: the transaction id of the INVITE whose 2xx awaits its ACK (the ACK reaches the client with it). */
  inviteTxnId?: string;
  /** UAS: stops retransmitting our 2xx (timer G) once the ACK is in. */
  stopRetransmit?: () => void;
}

/** A request from the network that waits for the client's response. */
export interface IncomingTxn {
  id: string;
  owner: AppLink;
  tx: ServerTransaction;
  req: SipRequest;
  /** The UAS dialog an INVITE sets up, or the dialog an in-dialog request belongs to. */
  dialog?: DialogRecord;
  /** The tag our responses carry in To (a new dialog's, or the existing dialog's). */
  localTag: string;
  /** An INVITE outside a dialog: its 2xx sets `dialog` up. */
  creates?: boolean;
}

/** A request the client sent, whose responses go back to it. */
export interface OutgoingTxn {
  id: string;
  owner: AppLink;
  req: SipRequest;
  dest: SipEndpoint;
  tx?: ClientTransaction;
  dialog?: DialogRecord;
  /** INVITE only: the client asked to CANCEL it (the CANCEL waits for a provisional, RFC 3261 §9.1). */
  cancel?: { req: SipRequest; sent: boolean };
  finalSeen?: boolean;
}

export function dialogKey(callId: string, localTag: string, remoteTag: string): string {
  return `${callId}|${localTag}|${remoteTag}`;
}

export function dialogIdOf(callId: string, fromTag: string): string {
  return `${callId};from-tag=${fromTag}`;
}

export function cseqOf(msg: SipRequest | SipResponse): { seq: number; method: string } {
  return parseCSeq(msg.headers.get('CSeq') ?? '');
}

/** Where an in-dialog request goes: the first route, the INVITE's source (UAS), else the remote target. */
export function nextHop(d: DialogRecord): SipEndpoint {
  const first = d.routeSet[0];
  if (first !== undefined) return endpointOf(parseNameAddr(first).rawUri, d.transport);
  return d.source ?? endpointOf(d.remoteTarget, d.transport);
}

/**
 * An in-dialog request (RFC 3261 §12.2.1.1) with the dialog's From/To/Call-ID, Request-URI and Route set; `seq` is
 * the CSeq number (a new one, or the INVITE's for an ACK).
 */
export function inDialogRequest(d: DialogRecord, method: string, seq: number, local: LocalAddress): SipRequest {
  const target = requestTarget(d.remoteTarget, d.routeSet);
  const req = newRequest(method, target.uri, local, nextHop(d).transport);
  const h = req.headers;
  h.append('Max-Forwards', '70');
  for (const route of target.routes) h.append('Route', route);
  h.append('From', d.local);
  h.append('To', d.remote);
  h.append('Call-ID', d.callId);
  h.append('CSeq', `${seq} ${method}`);
  return req;
}
