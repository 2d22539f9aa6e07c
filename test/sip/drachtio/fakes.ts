/** EventEmitter fakes of drachtio-srf's Srf, requests, responses and Dialog: same method names and event shapes. */
import { EventEmitter } from 'node:events';
import type { SrfSendOptions, SrfUacCallbacks, SrfUacOptions } from '../../../src/sip/drachtio/srf-types.ts';

export class FakeMessage extends EventEmitter {
  headers: Record<string, string>;
  body: string;
  constructor(headers: Record<string, string>, body = '') {
    super();
    this.headers = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    this.body = body;
  }
  get(name: string): string | undefined {
    return this.headers[name.toLowerCase()];
  }
  has(name: string): boolean {
    return name.toLowerCase() in this.headers;
  }
}

export class FakeIncomingRequest extends FakeMessage {
  method: string;
  uri: string;
  source_address = '10.1.2.3';
  source_port = 5070;
  protocol = 'tcp';
  source = 'network';
  constructor(method: string, uri: string, headers: Record<string, string>, body = '') {
    super(headers, body);
    this.method = method;
    this.uri = uri;
  }
}

export class FakeResponse extends FakeMessage {
  status: number;
  reason: string;
  constructor(status: number, reason: string, headers: Record<string, string> = {}, body = '') {
    super(headers, body);
    this.status = status;
    this.reason = reason;
  }
}

export interface Sent {
  status: number;
  reason?: string;
  opts?: SrfSendOptions;
}
export class FakeServerResponse {
  sent: Sent[] = [];
  send(status: number, reasonOrOpts?: string | SrfSendOptions, opts?: SrfSendOptions): void {
    if (typeof reasonOrOpts === 'string') this.sent.push({ status, reason: reasonOrOpts, opts });
    else this.sent.push({ status, opts: reasonOrOpts });
  }
}

export class FakeSentRequest extends FakeMessage {
  cancels: Array<{ headers?: Record<string, string> }> = [];
  cancel(opts: { headers?: Record<string, string> } = {}, cb?: (err: unknown) => void): void {
    this.cancels.push(opts);
    cb?.(null);
  }
}

export type RequestCallback = (err: unknown, res?: FakeResponse) => void;
export class FakeDialog extends EventEmitter {
  id: string;
  sip: { callId: string; localTag: string; remoteTag: string };
  local = { contact: '<sip:gw@192.0.2.1:5060>' };
  remote: { sdp: string };
  res?: FakeResponse;
  requests: Array<{ opts: { method: string; headers?: Record<string, string>; body?: string }; cb: RequestCallback }> =
    [];
  destroys: Array<{ headers?: Record<string, string> } | undefined> = [];
  constructor(callId: string, remoteSdp: string) {
    super();
    this.id = `dlg-${callId}`;
    this.sip = { callId, localTag: 'lt', remoteTag: 'rt' };
    this.remote = { sdp: remoteSdp };
  }
  request(opts: { method: string; headers?: Record<string, string>; body?: string }, cb: RequestCallback): this {
    this.requests.push({ opts, cb });
    return this;
  }
  destroy(opts?: { headers?: Record<string, string> }): Promise<void> {
    this.destroys.push(opts);
    this.removeAllListeners();
    return Promise.resolve();
  }
}

export interface Pending<T> {
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}
export class FakeSrf extends EventEmitter {
  connectOpts: unknown;
  disconnects: unknown[] = [];
  inviteHandler: ((req: FakeIncomingRequest, res: FakeServerResponse) => void) | undefined;
  optionsHandler: ((req: FakeIncomingRequest, res: FakeServerResponse) => void) | undefined;
  uas: Array<
    { req: unknown; res: unknown; opts: { localSdp: string; headers: Record<string, string> } } & Pending<FakeDialog>
  > = [];
  uac: Array<{ uri: string; opts: SrfUacOptions; callbacks: SrfUacCallbacks } & Pending<unknown>> = [];
  connect(opts: unknown): void {
    this.connectOpts = opts;
  }
  disconnect(socket?: unknown): void {
    this.disconnects.push(socket);
  }
  invite(handler: (req: FakeIncomingRequest, res: FakeServerResponse) => void): void {
    this.inviteHandler = handler;
  }
  options(handler: (req: FakeIncomingRequest, res: FakeServerResponse) => void): void {
    this.optionsHandler = handler;
  }
  /** Callback form, as the adapter uses it: `resolve` calls back synchronously, like drachtio-srf does. */
  createUAS(
    req: unknown,
    res: unknown,
    opts: { localSdp: string; headers: Record<string, string> },
    cb: (err: unknown, dlg?: FakeDialog) => void,
  ): void {
    this.uas.push({ req, res, opts, resolve: (d) => cb(null, d), reject: (e) => cb(e) });
  }
  createUAC(
    uri: string,
    opts: SrfUacOptions,
    callbacks: SrfUacCallbacks,
    cb: (err: unknown, answered?: unknown) => void,
  ): void {
    this.uac.push({ uri, opts, callbacks, resolve: (a) => cb(null, a), reject: (e) => cb(e) });
  }
}
