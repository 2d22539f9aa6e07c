/**
 * A scripted SBC on a loopback address (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127/8 to lo, no setup), over
 * UDP: records every request and answers INVITE and OPTIONS as its `behaviour` says. For the engine's failover and
 * probing tests; the end-to-end tests use SIPp instead.
 */
import dgram from 'node:dgram';
import type { SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction.ts';

export type SbcBehaviour =
  /** Never answers (a dead SBC whose address still routes). */
  | 'silent'
  /** 100, 180, then 200 with SDP. */
  | 'answer'
  /** 100 then this final response. */
  | { status: number; reason?: string; headers?: Array<[string, string]>; ringFirst?: boolean }
  /** Silent for `lateMs`, then rings (100, 180; a CANCEL then gets 200 and the INVITE 487) or answers (100, 180, 200). */
  | { lateMs: number; late: 'ring' | 'answer' };

const SDP = Buffer.from(
  'v=0\r\no=sbc 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n',
);

export class FakeSbc {
  readonly address: string;
  readonly received: SipRequest[] = [];
  behaviour: SbcBehaviour;
  /** Answer OPTIONS (with optionsStatus) while true; stay silent otherwise. */
  answersOptions = true;
  optionsStatus = 200;
  readonly #socket: dgram.Socket;
  /** Each SBC its own To tag, as real ones: two answers to one call are two dialogs. */
  readonly #answered = new Set<string>();
  readonly #tag = `sbc-${Math.random().toString(36).slice(2, 8)}`;

  constructor(address: string, behaviour: SbcBehaviour, socket: dgram.Socket) {
    this.address = address;
    this.behaviour = behaviour;
    this.#socket = socket;
  }

  static async start(address: string, behaviour: SbcBehaviour, port = 0): Promise<FakeSbc> {
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, address, () => resolve());
    });
    const sbc = new FakeSbc(address, behaviour, socket);
    socket.on('message', (data, rinfo) => sbc.#onMessage(data, rinfo.address, rinfo.port));
    return sbc;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  /** Requests received with this method, retransmissions (same branch) counted once. */
  requests(method: string): SipRequest[] {
    const seen = new Set<string>();
    return this.received.filter((r) => {
      const key = `${r.method} ${r.headers.get('Via')}`;
      if (r.method !== method || seen.has(key)) return false;
      seen.add(key);
      return true;
    });
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #onMessage(data: Buffer, address: string, port: number): void {
    const parsed = parseMessage(data);
    if (!parsed.ok || parsed.message.kind !== 'request') return;
    const req = parsed.message;
    this.received.push(req);
    const send = (res: SipResponse): void => void this.#socket.send(serializeMessage(res), port, address);
    if (req.method === 'OPTIONS' && this.answersOptions) send(buildResponse(req, this.optionsStatus));
    if (req.method === 'BYE') send(buildResponse(req, 200, 'OK'));
    if (req.method === 'CANCEL') this.#answerCancel(req, send);
    if (req.method === 'INVITE') this.#answerInvite(req, send);
  }

  #answerCancel(cancel: SipRequest, send: (res: SipResponse) => void): void {
    send(buildResponse(cancel, 200, 'OK'));
    const via = cancel.headers.get('Via') ?? '';
    const invite = this.requests('INVITE').find((r) => r.headers.get('Via') === via);
    // The CANCEL/200 race: an INVITE already answered has nothing left to cancel.
    if (invite && !this.#answered.has(via))
      send(buildResponse(invite, 487, 'Request Terminated', { toTag: this.#tag }));
  }

  #answer(req: SipRequest, send: (res: SipResponse) => void): void {
    send(buildResponse(req, 100, 'Trying'));
    send(buildResponse(req, 180, 'Ringing', { toTag: this.#tag }));
    const contact: [string, string] = ['Contact', `<sip:sbc@${this.address}:${this.port}>`];
    this.#answered.add(req.headers.get('Via') ?? '');
    send(
      buildResponse(req, 200, 'OK', {
        toTag: this.#tag,
        headers: [contact],
        body: SDP,
        contentType: 'application/sdp',
      }),
    );
  }

  #answerInvite(req: SipRequest, send: (res: SipResponse) => void): void {
    const b = this.behaviour;
    if (b === 'silent') return;
    if (typeof b === 'object' && 'lateMs' in b) {
      const via = req.headers.get('Via');
      if (this.received.filter((r) => r.method === 'INVITE' && r.headers.get('Via') === via).length > 1) return;
      setTimeout(() => {
        if (b.late === 'answer') this.#answer(req, send);
        else {
          send(buildResponse(req, 100, 'Trying'));
          send(buildResponse(req, 180, 'Ringing', { toTag: this.#tag }));
        }
      }, b.lateMs);
      return;
    }
    if (b === 'answer') {
      this.#answer(req, send);
      return;
    }
    send(buildResponse(req, 100, 'Trying'));
    if (b.ringFirst) send(buildResponse(req, 180, 'Ringing', { toTag: this.#tag }));
    send(buildResponse(req, b.status, b.reason, { toTag: this.#tag, headers: b.headers }));
  }
}
