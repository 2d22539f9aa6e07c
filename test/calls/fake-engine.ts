/**
 * An in-memory SIP engine (the port of src/sip/port.ts) driven step by step by a test: it creates inbound calls,
 * records what the call logic did to them and to the outbound INVITEs, and lets the test decide when each response,
 * ACK, CANCEL, BYE or in-dialog request happens. Engine duties the port promises (487 on CANCEL, BYE answered 200,
 * idempotent bye(), 481 after the end) are imitated the way the embedded engine does them.
 */
import {
  SipError,
  type Dialog,
  type DialogEnd,
  type DialogResponse,
  type EngineStats,
  type HeaderList,
  type InboundCall,
  type InDialogRequest,
  type InDialogRequestOptions,
  type SipBody,
  type OutboundCall,
  type OutboundInviteOptions,
  type ProvisionalResponse,
  type ResponseOptions,
  type SipEngine,
  type SipPeer,
} from '../../src/sip/port.ts';

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => undefined); // a test may never observe a rejection it caused
  return { promise, resolve, reject };
}

/** Let every pending promise continuation run (works under fake timers too: no macrotask involved). */
export async function settle(rounds = 50): Promise<void> {
  for (let i = 0; i < rounds; i++) await Promise.resolve();
}

function headerAccess(list: HeaderList): { header(name: string): string | undefined; headers(): HeaderList } {
  return {
    header: (name) => list.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1],
    headers: () => list,
  };
}

export interface MessageInit {
  body?: Buffer;
  contentType?: string;
  headers?: HeaderList;
  reason?: string;
}

/** An in-dialog request the test emitted toward the call logic; `responses` records what it was answered. */
export class FakeInDialogRequest implements InDialogRequest {
  readonly method: string;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly header: InDialogRequest['header'];
  readonly headers: InDialogRequest['headers'];
  readonly responses: Array<{ status: number } & ResponseOptions> = [];
  readonly #ack = deferred<SipBody | undefined>();

  constructor(method: string, init: MessageInit) {
    this.method = method;
    this.body = init.body ?? Buffer.alloc(0);
    this.contentType = init.contentType;
    ({ header: this.header, headers: this.headers } = headerAccess(init.headers ?? []));
  }

  get final(): ({ status: number } & ResponseOptions) | undefined {
    return this.responses.find((r) => r.status >= 200);
  }

  respond(status: number, opts: ResponseOptions = {}): void {
    if (this.final) return;
    this.responses.push({ status, ...opts });
  }

  awaitAck(): Promise<SipBody | undefined> {
    return this.#ack.promise;
  }

  /** The peer ACKs our 2xx to its re-INVITE (with its answer when our 2xx carried the offer); undefined: never. */
  acked(body?: SipBody): void {
    this.#ack.resolve(body);
  }
}

/** A request the call logic sent on a dialog; the test answers it with reply() or fail(). */
export interface SentRequest {
  method: string;
  body: Buffer | undefined;
  contentType: string | undefined;
  headers: HeaderList;
  reply(status: number, init?: MessageInit): void;
  fail(err: unknown): void;
  /** What the call logic sent as the ACK of a deferred-ACK 2xx (request with deferAck), once it did. */
  ack: SipBody | undefined;
}

let dialogSeq = 0;

export class FakeDialog implements Dialog {
  readonly id: string;
  readonly callId: string;
  readonly remoteBody: Buffer;
  readonly remoteContentType: string | undefined;
  readonly remoteHeaders: HeaderList | undefined;
  /** Requests sent by the call logic (request()), in order. */
  readonly sent: SentRequest[] = [];
  /** BYEs actually sent (the first bye() call; later ones are no-ops, as in the engines). */
  readonly byes: Array<{ headers: HeaderList }> = [];
  byeCalls = 0;
  /** The ACK sent with ack() (a deferred-ACK dialog: delayed offer), or undefined. */
  ackSent: SipBody | undefined;
  ackCalls = 0;
  /** The body of the ACK that confirmed this dialog (UAS side; the test sets it before the PBX's ack()). */
  ackBody: SipBody = { body: Buffer.alloc(0) };
  #isEnded = false;
  #requestHandler: ((req: InDialogRequest) => void) | undefined;
  #endHandlers: Array<(end: DialogEnd) => void> = [];

  constructor(callId: string, init: MessageInit = {}) {
    this.id = `dlg-${++dialogSeq}`;
    this.callId = callId;
    this.remoteBody = init.body ?? Buffer.alloc(0);
    this.remoteContentType = init.contentType;
    this.remoteHeaders = init.headers;
  }

  get ended(): boolean {
    return this.#isEnded;
  }

  /** Replaces the previous handler, like both real adapters. */
  onRequest(cb: (req: InDialogRequest) => void): void {
    this.#requestHandler = cb;
  }

  /** Handlers registered after the end are not called (the embedded engine's behaviour). */
  onEnd(cb: (end: DialogEnd) => void): void {
    this.#endHandlers.push(cb);
  }

  request(method: string, opts: InDialogRequestOptions = {}): Promise<DialogResponse> {
    if (this.#isEnded) return Promise.reject(new SipError(481, 'Call/Transaction Does Not Exist'));
    const d = deferred<DialogResponse>();
    const sent: SentRequest = {
      method,
      body: opts.body,
      contentType: opts.contentType,
      headers: opts.headers ?? [],
      ack: undefined,
      reply: (status, init = {}) => {
        const res: DialogResponse = {
          status,
          reason: init.reason ?? (status === 200 ? 'OK' : ''),
          body: init.body ?? Buffer.alloc(0),
          contentType: init.contentType,
          ...headerAccess(init.headers ?? []),
        };
        const deferAck = opts.deferAck && method === 'INVITE' && status >= 200 && status < 300;
        d.resolve(deferAck ? { ...res, ack: (answer) => void (sent.ack ??= answer) } : res);
      },
      fail: (err) => d.reject(err),
    };
    this.sent.push(sent);
    return d.promise;
  }

  ack(answer: SipBody): void {
    this.ackCalls++;
    this.ackSent ??= answer;
  }

  async bye(opts: { headers?: HeaderList } = {}): Promise<void> {
    this.byeCalls++;
    if (this.#isEnded) return;
    this.byes.push({ headers: opts.headers ?? [] });
    this.#end({ by: 'local', headers: opts.headers ?? [] });
  }

  /** The peer sends BYE (the engine answers it 200). */
  remoteBye(headers: HeaderList = []): void {
    if (this.#isEnded) return;
    this.#end({ by: 'remote', reason: headerAccess(headers).header('Reason'), headers });
  }

  /** The peer sends an in-dialog request; answered by the engine when nobody can take it. */
  receive(method: string, init: MessageInit = {}): FakeInDialogRequest {
    const req = new FakeInDialogRequest(method, init);
    if (this.#isEnded) req.respond(481, { reason: 'Call/Transaction Does Not Exist' });
    else if (!this.#requestHandler) req.respond(method === 'OPTIONS' ? 200 : 501);
    else this.#requestHandler(req);
    return req;
  }

  #end(end: DialogEnd): void {
    this.#isEnded = true;
    this.#requestHandler = undefined;
    for (const h of this.#endHandlers.splice(0)) h(end);
  }
}

export interface InboundInit {
  callId?: string;
  called?: string;
  calling?: string;
  displayName?: string;
  source?: Partial<SipPeer>;
  headers?: HeaderList;
  body?: Buffer;
  contentType?: string;
}

let callSeq = 0;

export class FakeInboundCall implements InboundCall {
  readonly callId: string;
  readonly requestUri: string;
  readonly calledUser: string;
  readonly callingUser: string;
  readonly from: string;
  readonly to: string;
  readonly source: SipPeer;
  readonly body: Buffer;
  readonly contentType: string | undefined;
  readonly header: InboundCall['header'];
  readonly headers: InboundCall['headers'];
  readonly provisionals: Array<{ status: number } & ResponseOptions> = [];
  /** The final response sent (a reject, the engine's 487, or the 200 of answer()). */
  finalResponse: ({ status: number } & ResponseOptions) | undefined;
  answerCalls = 0;
  /** The PBX-side dialog, created when answer() is called. */
  dialog: FakeDialog | undefined;
  #isCancelled = false;
  #cancelHandlers: Array<(c: { reason?: string }) => void> = [];
  #ackDeferred: Deferred<Dialog> | undefined;

  constructor(init: InboundInit = {}) {
    this.callId = init.callId ?? `call-${++callSeq}@pbx.test`;
    this.calledUser = init.called ?? '+4930123456';
    this.callingUser = init.calling ?? '+4989555';
    this.requestUri = `sip:${this.calledUser}@gw.test`;
    const name = init.displayName ? `"${init.displayName}" ` : '';
    this.from = `${name}<sip:${this.callingUser}@pbx.test>;tag=pbxtag`;
    this.to = `<sip:${this.calledUser}@gw.test>`;
    this.source = { transport: 'udp', address: '127.0.0.1', port: 5070, ...init.source };
    this.body = init.body ?? Buffer.from('v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\n');
    this.contentType = init.contentType ?? 'application/sdp';
    const headers: HeaderList = init.headers ?? [
      ['Via', 'SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1'],
      ['From', this.from],
      ['To', this.to],
      ['Call-ID', this.callId],
      ['CSeq', '1 INVITE'],
      ['Contact', '<sip:pbx@127.0.0.1:5070>'],
      ['Content-Type', this.contentType],
    ];
    ({ header: this.header, headers: this.headers } = headerAccess(headers));
  }

  get cancelled(): boolean {
    return this.#isCancelled;
  }

  /** The 200's options, once answer() was called. */
  get answered(): ResponseOptions | undefined {
    return this.finalResponse?.status === 200 ? this.finalResponse : undefined;
  }

  onCancel(cb: (c: { reason?: string }) => void): void {
    if (this.#isCancelled) queueMicrotask(() => cb({}));
    else this.#cancelHandlers.push(cb);
  }

  sendProvisional(status: number, opts: ResponseOptions = {}): void {
    if (this.finalResponse || status < 101 || status > 199) return;
    this.provisionals.push({ status, ...opts });
  }

  reject(status: number, opts: ResponseOptions = {}): void {
    if (this.finalResponse) return;
    this.finalResponse = { status, ...opts };
  }

  answer(opts: ResponseOptions): Promise<Dialog> {
    this.answerCalls++;
    if (this.finalResponse) {
      return Promise.reject(
        new SipError(this.#isCancelled ? 487 : 500, this.#isCancelled ? 'Request Terminated' : 'Already answered'),
      );
    }
    this.finalResponse = { status: 200, ...opts };
    this.dialog = new FakeDialog(this.callId, {
      body: this.body,
      contentType: this.contentType,
      headers: this.headers(),
    });
    this.#ackDeferred = deferred<Dialog>();
    return this.#ackDeferred.promise;
  }

  /** The PBX's ACK arrives (with `answer` as its body: delayed offer): answer() resolves with the dialog. */
  ack(answer?: SipBody): FakeDialog {
    if (!this.#ackDeferred || !this.dialog) throw new Error('ack() before answer()');
    if (answer) this.dialog.ackBody = answer;
    this.#ackDeferred.resolve(this.dialog);
    return this.dialog;
  }

  /** No ACK ever comes: answer() rejects (the engine has BYEd the dialog). */
  ackTimeout(): void {
    if (!this.#ackDeferred) throw new Error('ackTimeout() before answer()');
    this.#ackDeferred.reject(new SipError(408, 'ACK Timeout'));
  }

  /** The PBX sends CANCEL: ignored after a final response, else the engine answers 487 and tells the call logic. */
  cancel(reason?: string): void {
    if (this.finalResponse || this.#isCancelled) return;
    this.#isCancelled = true;
    this.reject(487, { reason: 'Request Terminated' });
    for (const cb of this.#cancelHandlers.splice(0)) cb({ reason });
  }
}

export class FakeOutboundCall implements OutboundCall {
  readonly callId: string;
  readonly opts: OutboundInviteOptions;
  readonly result: Promise<Dialog>;
  readonly cancelCalls: Array<{ headers?: HeaderList } | undefined> = [];
  dialog: FakeDialog | undefined;
  #settled = false;
  readonly #d = deferred<Dialog>();
  #provisionalHandlers: Array<(res: ProvisionalResponse) => void> = [];

  constructor(callId: string, opts: OutboundInviteOptions) {
    this.callId = callId;
    this.opts = opts;
    this.result = this.#d.promise;
  }

  header(name: string): string | undefined {
    return this.opts.headers?.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
  }

  onProvisional(cb: (res: ProvisionalResponse) => void): void {
    this.#provisionalHandlers.push(cb);
  }

  /** Telnyx sends a provisional response (180, or 183 with SDP). */
  ring(status = 180, init: MessageInit = {}): void {
    if (this.#settled) return;
    const p: ProvisionalResponse = {
      status,
      reason: init.reason ?? (status === 180 ? 'Ringing' : 'Session Progress'),
      headers: init.headers ?? [],
      body: init.body ?? Buffer.alloc(0),
      contentType: init.contentType,
    };
    for (const cb of this.#provisionalHandlers) cb(p);
  }

  /** Telnyx answers 200 (ACK sent by the engine): result resolves with a fresh dialog. */
  answer(init: MessageInit = {}): FakeDialog {
    if (this.#settled) throw new Error('outbound INVITE already settled');
    this.#settled = true;
    this.dialog = new FakeDialog(this.callId, { contentType: 'application/sdp', ...init });
    this.#d.resolve(this.dialog);
    return this.dialog;
  }

  /** A final failure (or a local one: 408 ring timeout, 503 transport). */
  fail(status: number, reason = 'Failed', headers: HeaderList = []): void {
    if (this.#settled) throw new Error('outbound INVITE already settled');
    this.#settled = true;
    this.#d.reject(new SipError(status, reason, headers));
  }

  /** Like the embedded engine: before a final response the result rejects 487 at once; after, a no-op. */
  cancel(opts?: { headers?: HeaderList }): void {
    this.cancelCalls.push(opts);
    if (this.#settled) return;
    this.#settled = true;
    this.#d.reject(new SipError(487, 'Request Terminated'));
  }
}

export class FakeEngine implements SipEngine {
  readonly kind = 'embedded' as const;
  readonly localPort = 5060;
  /** Every outbound INVITE, in order. */
  readonly invites: FakeOutboundCall[] = [];
  #handler: ((call: InboundCall) => void) | undefined;

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  onInvite(handler: (call: InboundCall) => void): void {
    this.#handler = handler;
  }

  /** A new INVITE from the PBX, handed to the call logic. */
  incoming(init: InboundInit = {}): FakeInboundCall {
    if (!this.#handler) throw new Error('no INVITE handler registered');
    const call = new FakeInboundCall(init);
    this.#handler(call);
    return call;
  }

  invite(opts: OutboundInviteOptions): FakeOutboundCall {
    const out = new FakeOutboundCall(`out-${this.invites.length + 1}@gw.test`, opts);
    this.invites.push(out);
    return out;
  }

  stats(): EngineStats {
    return { messagesIn: 0, messagesOut: 0, parseErrors: 0, activeDialogs: 0, activeTransactions: 0 };
  }
}
