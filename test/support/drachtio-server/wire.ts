/**
 * drachtio-server's wire protocol as the server speaks it (the test double of server.ts).
 *
 * Framing, both directions: `<length>#<text>`, length in UTF-8 bytes of <text> (drachtio-srf lib/wire-protocol.js
 * send/_onData; drachtio-server src/client.cpp readMessageLength). <text> is `<msgId>|<type>|<tokens...>`, and for
 * messages carrying SIP, CRLF and the SIP message after the first line (drachtio.h splitMsg).
 *
 * Server → client message shapes, each from the server source it imitates:
 * - `<id>|response|<clientMsgId>|OK|<data>` / `|NO|<reason>` (client.cpp createResponseMsg: authenticate, route,
 *   remove_route, ping) and `|NOK|<reason>` (client-controller.cpp route_api_response, for `sip` requests);
 * - `<id>|sip|<meta>|<transactionId>|<dialogId>|CRLF<sip>` (client.cpp sendSipMessageToClient with a dialog id:
 *   responses, in-dialog requests, ACK, CANCEL);
 * - `<id>|sip|<meta>|<transactionId>||<destAddress>|<destPort>|CRLF<sip>` (the same without a dialog id, for a new
 *   request, with the address it arrived on: pending-request-controller.cpp processNewRequest);
 * - <meta> is `source|bytes|protocol|address|port|time` (drachtio.h SipMsgData_t::toMessageFormat).
 */
import { randomUUID } from 'node:crypto';

const CRLF = '\r\n';

/** Splits a TCP byte stream into wire messages. */
export class WireDecoder {
  #buf = Buffer.alloc(0);

  push(chunk: Buffer): string[] {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    const out: string[] = [];
    for (;;) {
      const hash = this.#buf.indexOf('#');
      if (hash <= 0) break;
      const len = Number(this.#buf.toString('utf8', 0, hash));
      // drachtio-server drops a client that sends a bad length (client.cpp read_handler).
      if (!Number.isInteger(len) || len <= 0) throw new Error('invalid message length specifier');
      if (this.#buf.length < hash + 1 + len) break;
      out.push(this.#buf.toString('utf8', hash + 1, hash + 1 + len));
      this.#buf = this.#buf.subarray(hash + 1 + len);
    }
    return out;
  }
}

export function frame(text: string): string {
  return `${Buffer.byteLength(text, 'utf8')}#${text}`;
}

export interface ClientMessage {
  id: string;
  type: string;
  /** Tokens after the type, on the first line. */
  args: string[];
  /** What follows the first line (a SIP message), '' when none. */
  sip: string;
}

export function parseClientMessage(text: string): ClientMessage {
  const eol = text.indexOf(CRLF);
  const leader = eol === -1 ? text : text.slice(0, eol);
  const [id = '', type = '', ...args] = leader.split('|');
  return { id, type, args, sip: eol === -1 ? '' : text.slice(eol + 2) };
}

/** Where a SIP message came from or went, as drachtio-server describes it to its clients. */
export interface MsgMeta {
  source: 'network' | 'application';
  protocol: string;
  address: string;
  port: number;
}

/** drachtio.h SipMsgData_t::toMessageFormat; the time is the server's HH:MM:SS.micro (drachtio.cpp). */
export function metaTokens(meta: MsgMeta, raw: string): string {
  const now = new Date();
  const two = (n: number) => String(n).padStart(2, '0');
  const time = `${two(now.getUTCHours())}:${two(now.getUTCMinutes())}:${two(now.getUTCSeconds())}.${String(
    now.getUTCMilliseconds() * 1000,
  ).padStart(6, '0')}`;
  return [meta.source, Buffer.byteLength(raw, 'utf8'), meta.protocol, meta.address, meta.port, time].join('|');
}

export function reply(clientMsgId: string, status: 'OK' | 'NO' | 'NOK', data?: string): string {
  return `${randomUUID()}|response|${clientMsgId}|${status}${data === undefined ? '' : `|${data}`}`;
}

/**
 * The data of an OK to a `sip` request: what was sent. Requests: sip-dialog-controller.cpp
 * doSendRequestOutsideDialog / doSendRequestInsideDialog / doSendCancelRequest (`meta|txnId|Msg sent:|`); responses:
 * doRespondToSipRequest (`meta|txnId|dialogId||Msg sent:|`), whose dialog id becomes the UAS Dialog's id in
 * drachtio-srf (srf.js createUAS: `res.meta` → Dialog#id).
 */
export function sentData(meta: MsgMeta, raw: string, txnId: string, dialogId?: string): string {
  const ids = dialogId === undefined ? txnId : `${txnId}|${dialogId}|`;
  return `${metaTokens(meta, raw)}|${ids}|Msg sent:|${CRLF}${raw}`;
}

export function sipToClient(meta: MsgMeta, raw: string, txnId: string, dialogId: string): string {
  return `${randomUUID()}|sip|${metaTokens(meta, raw)}|${txnId}|${dialogId}|${CRLF}${raw}`;
}

export function newRequestToClient(meta: MsgMeta, raw: string, txnId: string, receivedOn: MsgMeta): string {
  return `${randomUUID()}|sip|${metaTokens(meta, raw)}|${txnId}||${receivedOn.address}|${receivedOn.port}|${CRLF}${raw}`;
}

/** A SIP message as a client writes it: start line, header lines and body, nothing checked (drachtio.h splitMsg). */
export interface AppSipMessage {
  startLine: string;
  headers: Array<[string, string]>;
  body: string;
}

export function parseAppSip(text: string): AppSipMessage {
  const end = text.indexOf(CRLF + CRLF);
  const head = end === -1 ? text : text.slice(0, end);
  const body = end === -1 ? '' : text.slice(end + 4);
  const [startLine = '', ...lines] = head.split(CRLF);
  const headers: Array<[string, string]> = [];
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers.push([line.slice(0, colon).trim(), line.slice(colon + 1).trim()]);
  }
  return { startLine, headers, body };
}

export function appHeader(msg: AppSipMessage, name: string): string | undefined {
  const key = name.toLowerCase();
  return msg.headers.find(([n]) => n.toLowerCase() === key)?.[1];
}
