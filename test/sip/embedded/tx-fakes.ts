/** In-memory transport and message builders for the transaction-layer tests. */
import { createRequest, SipHeaders } from '../../../src/sip/embedded/message.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import type { SipTransport } from '../../../src/sip/embedded/transaction.ts';

export interface SentRecord {
  msg: SipMessage;
  dest: SipEndpoint;
  /** Fake-clock time of the send. */
  at: number;
}

export class FakeTransport implements SipTransport {
  readonly sent: SentRecord[] = [];
  #messageHandler: ((msg: SipMessage, source: SipEndpoint) => void) | undefined;
  #sendErrorHandler: ((error: Error, msg: SipMessage, dest: SipEndpoint) => void) | undefined;
  readonly #start = Date.now();

  /** Hand the encoded bytes back, as TransportLayer does (transactions then keep encoded copies). */
  returnsWire = false;

  send(msg: SipMessage, dest: SipEndpoint): Buffer | undefined {
    this.sent.push({ msg, dest, at: Date.now() - this.#start });
    return this.returnsWire ? (msg.wire ?? serializeMessage(msg)) : undefined;
  }

  onMessage(handler: (msg: SipMessage, source: SipEndpoint) => void): void {
    this.#messageHandler = handler;
  }

  onSendError(handler: (error: Error, msg: SipMessage, dest: SipEndpoint) => void): void {
    this.#sendErrorHandler = handler;
  }

  /** Simulate a message arriving from the network. */
  receive(msg: SipMessage, source: SipEndpoint): void {
    this.#messageHandler?.({ ...msg, headers: msg.headers.clone(), source }, source);
  }

  failSend(msg: SipMessage, dest: SipEndpoint): void {
    this.#sendErrorHandler?.(new Error('ECONNREFUSED'), msg, dest);
  }

  /** Send times of requests with this method, or responses with this status. */
  times(what: string | number): number[] {
    return this.matching(what).map((r) => r.at);
  }

  matching(what: string | number): SentRecord[] {
    return this.sent.filter((r) =>
      typeof what === 'number'
        ? r.msg.kind === 'response' && r.msg.status === what
        : r.msg.kind === 'request' && r.msg.method === what,
    );
  }

  clear(): void {
    this.sent.length = 0;
  }
}

export const PEER_UDP: SipEndpoint = { transport: 'udp', address: '192.0.2.10', port: 5060 };
export const PEER_TCP: SipEndpoint = { transport: 'tcp', address: '192.0.2.10', port: 40123 };

export interface RequestSpec {
  method: string;
  branch: string;
  transport?: 'UDP' | 'TCP';
  cseq?: number;
  cseqMethod?: string;
  toTag?: string;
  routes?: string[];
  viaExtra?: string;
}

export function makeRequest(spec: RequestSpec): SipRequest {
  const h = new SipHeaders();
  h.append('Via', `SIP/2.0/${spec.transport ?? 'UDP'} 192.0.2.10:5060;branch=${spec.branch}${spec.viaExtra ?? ''}`);
  h.append('Via', 'SIP/2.0/UDP 198.51.100.1:5060;branch=z9hG4bKupstream');
  h.append('Max-Forwards', '70');
  for (const r of spec.routes ?? []) h.append('Route', r);
  h.append('From', '"Alice" <sip:alice@example.com>;tag=fromtag1');
  h.append('To', `<sip:bob@example.net>${spec.toTag ? `;tag=${spec.toTag}` : ''}`);
  h.append('Call-ID', 'call-1@example.com');
  h.append('CSeq', `${spec.cseq ?? 1} ${spec.cseqMethod ?? spec.method}`);
  return createRequest(spec.method, 'sip:bob@example.net', h);
}

export function isResponse(msg: SipMessage): msg is SipResponse {
  return msg.kind === 'response';
}
