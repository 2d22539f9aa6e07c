/**
 * A scripted SIP peer on one UDP socket for tests that need a message SIPp scenarios do not send (a reliable
 * provisional) or want to look at every header: it queues what it receives and sends what the test builds.
 */
import dgram from 'node:dgram';
import { newBranch } from '../../../src/sip/embedded/transaction-helpers.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction-helpers.ts';
import { createRequest, SipHeaders, type SipMessage, type SipRequest } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import type { HeaderList } from '../../../src/sip/port.ts';

export interface ReplyOptions {
  toTag?: string;
  headers?: HeaderList;
  body?: string;
}

export class RawPeer {
  readonly #sock: dgram.Socket;
  readonly #queue: SipMessage[] = [];
  #wake: (() => void) | undefined;

  constructor(sock: dgram.Socket) {
    this.#sock = sock;
    sock.on('message', (data) => {
      const parsed = parseMessage(data);
      if (!parsed.ok) return;
      this.#queue.push(parsed.message);
      this.#wake?.();
    });
  }

  /** A peer on a fresh UDP port of 127.0.0.1. */
  static async start(): Promise<RawPeer> {
    const sock = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
    return new RawPeer(sock);
  }

  get port(): number {
    return this.#sock.address().port;
  }

  get contact(): string {
    return `<sip:peer@127.0.0.1:${this.port}>`;
  }

  /** The first queued (or next) message `pred` accepts; the ones before it stay queued. */
  async next(what: string, pred: (m: SipMessage) => boolean, timeoutMs = 5000): Promise<SipMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.#queue.findIndex(pred);
      if (i >= 0) return this.#queue.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`peer: no ${what} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  request(method: string): Promise<SipRequest> {
    return this.next(method, (m) => m.kind === 'request' && m.method === method) as Promise<SipRequest>;
  }

  /** A final response to a request of ours with this CSeq (e.g. '2 INVITE'). */
  final(cseq: string): Promise<SipMessage> {
    return this.next(`final response to ${cseq}`, (m) => {
      return m.kind === 'response' && m.status >= 200 && m.headers.get('CSeq') === cseq;
    });
  }

  send(msg: SipMessage, port: number): void {
    this.#sock.send(serializeMessage(msg), port, '127.0.0.1');
  }

  /** Answer a request to the address in its top Via (the double's SIP port). */
  reply(req: SipRequest, status: number, opts: ReplyOptions = {}): void {
    const res = buildResponse(req, status, undefined, { toTag: opts.toTag, headers: opts.headers });
    if (opts.body) {
      res.headers.append('Content-Type', 'application/sdp');
      res.body = Buffer.from(opts.body);
    }
    const via = /SIP\/2\.0\/UDP [^:]+:(\d+)/.exec(req.headers.get('Via') ?? '');
    this.send(res, Number(via?.[1]));
  }

  /** A request from this peer; dialog fields come from `h` (From with tag, To, Call-ID, CSeq). */
  build(method: string, uri: string, h: Record<string, string>, body?: string): SipRequest {
    const headers = new SipHeaders();
    headers.append('Via', `SIP/2.0/UDP 127.0.0.1:${this.port};branch=${newBranch()};rport`);
    headers.append('Max-Forwards', '70');
    for (const [n, v] of Object.entries(h)) headers.append(n, v);
    if (!headers.has('Contact')) headers.append('Contact', this.contact);
    if (body) headers.append('Content-Type', 'application/sdp');
    return createRequest(method, uri, headers, body ? Buffer.from(body) : undefined);
  }

  close(): void {
    this.#sock.close();
  }
}
