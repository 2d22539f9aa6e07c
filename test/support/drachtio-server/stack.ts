/**
 * The SIP side of the drachtio-server double: our embedded transport (UDP and TCP on one port) and transaction
 * layers, plus the dialog and transaction tables both directions share.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../../../src/logger.ts';
import type { SipEndpoint, SipMessage, SipRequest } from '../../../src/sip/embedded/message.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { TransactionLayer } from '../../../src/sip/embedded/transaction.ts';
import { TransportLayer } from '../../../src/sip/embedded/transport.ts';
import { getTag } from '../../../src/sip/syntax/address.ts';
import {
  type DialogRecord,
  dialogKey,
  type IncomingTxn,
  inDialogRequest,
  nextHop,
  type OutgoingTxn,
} from './dialogs.ts';
import type { LocalAddress } from './messages.ts';
import { type MsgMeta, sipToClient } from './wire.ts';

export class Stack {
  readonly transport: TransportLayer;
  readonly tx: TransactionLayer;
  readonly logger: Logger;
  readonly incoming = new Map<string, IncomingTxn>();
  readonly outgoing = new Map<string, OutgoingTxn>();
  readonly #byId = new Map<string, DialogRecord>();
  readonly #byKey = new Map<string, DialogRecord>();

  constructor(host: string, logger: Logger) {
    this.logger = logger;
    this.transport = new TransportLayer({ host, port: 0, transports: ['udp', 'tcp'], logger });
    // sofia-sip answers an INVITE with 100 Trying at once ("the drachtio server automatically sends a 100 Trying",
    // drachtio-server docs/messages.md).
    this.tx = new TransactionLayer(this.transport, { trying100DelayMs: 0, logger });
  }

  get local(): LocalAddress {
    return { host: this.transport.localAddress, port: this.transport.localPort };
  }

  async start(): Promise<void> {
    await this.transport.start();
  }

  async stop(): Promise<void> {
    for (const d of this.#byId.values()) d.stopRetransmit?.();
    this.tx.stop();
    await this.transport.stop();
  }

  dialog(id: string): DialogRecord | undefined {
    return this.#byId.get(id);
  }

  /** The dialog of a request or response: Call-ID plus our tag and theirs. */
  dialogOf(msg: SipMessage, ourTagIn: 'To' | 'From'): DialogRecord | undefined {
    const theirTagIn = ourTagIn === 'To' ? 'From' : 'To';
    const ours = getTag(msg.headers.get(ourTagIn) ?? '');
    const theirs = getTag(msg.headers.get(theirTagIn) ?? '');
    if (!ours || !theirs) return undefined;
    return this.#byKey.get(dialogKey(msg.headers.get('Call-ID') ?? '', ours, theirs));
  }

  dialogByCallId(callId: string): DialogRecord | undefined {
    for (const d of this.#byId.values()) if (d.callId === callId) return d;
    return undefined;
  }

  addDialog(d: DialogRecord): void {
    this.#byId.set(d.id, d);
    this.#byKey.set(dialogKey(d.callId, d.localTag, d.remoteTag), d);
  }

  removeDialog(d: DialogRecord): void {
    d.stopRetransmit?.();
    if (this.#byId.get(d.id) === d) this.#byId.delete(d.id);
    const key = dialogKey(d.callId, d.localTag, d.remoteTag);
    if (this.#byKey.get(key) === d) this.#byKey.delete(key);
  }

  get dialogCount(): number {
    return this.#byId.size;
  }

  networkMeta(msg: SipMessage): MsgMeta {
    const src = msg.source ?? { transport: 'udp', address: '', port: 0 };
    return { source: 'network', protocol: src.transport, address: src.address, port: src.port };
  }

  sentMeta(dest: SipEndpoint): MsgMeta {
    return { source: 'application', protocol: dest.transport, ...this.localMeta() };
  }

  localMeta(): { address: string; port: number } {
    return { address: this.local.host, port: this.local.port };
  }

  /**
   * drachtio-server's own BYE (ACK timeout, the CANCEL/2xx race): sent to the peer, then handed to the client as if
   * it had come in, source `application` and transaction id `unsolicited` (sip-dialog-controller.cpp
   * endRetransmitFinalResponse, notifyTerminateStaleDialog; drachtio-srf drachtio-agent.js _onMsg).
   */
  unsolicitedBye(d: DialogRecord, reason: string): void {
    const bye = inDialogRequest(d, 'BYE', ++d.localSeq, this.local);
    bye.headers.append('Reason', reason);
    const dest = nextHop(d);
    this.removeDialog(d);
    this.tx.sendRequest(bye, dest, { onResponse: () => {}, onTimeout: () => {}, onTransportError: () => {} });
    d.owner.send(sipToClient(this.sentMeta(dest), raw(bye), 'unsolicited', d.id));
  }

  /** A transaction id (drachtio-server: generateUuid). */
  newId(): string {
    return randomUUID();
  }

  sendAck(d: DialogRecord, ack: SipRequest): void {
    const dest = nextHop(d);
    this.transport.send(ack, dest);
    d.lastAck = { msg: ack, dest };
  }
}

export function raw(msg: SipMessage): string {
  return serializeMessage(msg).toString('utf8');
}
