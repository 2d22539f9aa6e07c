/**
 * The part of drachtio-srf (v5) the adapter uses, typed structurally. The package's own .d.ts is looser than the
 * runtime in the places that matter here (cbRequest is called as (err, req); Dialog#request's callback fires once per
 * response, provisional ones included; createUAC without an offer and with noAck yields a deferred-ACK object),
 * and structural types let the tests drive the adapter with EventEmitter fakes.
 *
 * createUAS and createUAC are used in their callback form only: drachtio-srf calls it while it reads drachtio-server's
 * messages, so the adapter's listeners are on the new Dialog before the next message of the same TCP read (an ACK, a
 * BYE) is handled. A promise continuation would run after that read, and a BYE handled in between would be lost.
 */

/** drachtio keeps headers as one string per (lower-cased) name; repeated headers are comma-joined. */
export type SrfHeaders = Record<string, string>;

// biome-ignore lint/suspicious/noExplicitAny: drachtio-srf's emitters pass event-specific arguments; each use site narrows them
export type Listener = (...args: any[]) => void;

export interface SrfMessage {
  readonly headers: SrfHeaders;
  readonly body?: string;
  get(name: string): string | undefined;
  has(name: string): boolean;
}

/** A request that drachtio-server delivered to us (an INVITE, an in-dialog request, or a BYE). */
export interface SrfIncomingRequest extends SrfMessage {
  readonly method: string;
  readonly uri: string;
  readonly source_address: string;
  readonly source_port: number | string;
  /** 'udp', 'tcp', 'tls', 'ws', 'wss'. */
  readonly protocol: string;
  /** 'network' for peer traffic, 'application' for requests drachtio-server made up (the ACK-timeout BYE). */
  readonly source?: string;
  on(event: string, listener: Listener): unknown;
}

/** The INVITE we sent, as handed to cbRequest. */
export interface SrfSentRequest extends SrfMessage {
  cancel(opts?: { headers?: SrfHeaders }, callback?: (err: unknown) => void): void;
}

export interface SrfResponseMessage extends SrfMessage {
  readonly status: number;
  readonly reason?: string;
}

export interface SrfSendOptions {
  headers?: SrfHeaders;
  body?: string;
}

/** The response object of a request we received. */
export interface SrfServerResponse {
  send(status: number, reasonOrOpts?: string | SrfSendOptions, opts?: SrfSendOptions): void;
}

export interface SrfDialog {
  readonly id: string;
  readonly sip: { callId: string; localTag: string; remoteTag: string };
  readonly local?: { contact?: string };
  readonly remote: { sdp?: string };
  /** The 2xx that created a UAC dialog. */
  readonly res?: SrfMessage;
  on(event: string, listener: Listener): unknown;
  once(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  request(
    opts: { method: string; headers?: SrfHeaders; body?: string; noAck?: boolean },
    /** With noAck on a bodyless INVITE, a 2xx comes with `ack`, which sends its ACK (drachtio-srf lib/dialog.js). */
    callback: (err: unknown, res?: SrfResponseMessage, ack?: (opts: { body?: string }) => void) => void,
  ): unknown;
  destroy(opts?: { headers?: SrfHeaders }): Promise<unknown>;
}

/** What createUAC resolves to when called with noAck and no local offer: we send the ACK, then get the dialog. */
export interface SrfDeferredAck {
  readonly sdp: string;
  readonly res?: SrfMessage;
  ack(localSdp?: string): Promise<SrfDialog>;
}

export interface SrfUacOptions {
  headers: SrfHeaders;
  localSdp?: string;
  noAck?: boolean;
  proxy?: string;
  auth?: { username: string; password: string };
}

export interface SrfUacCallbacks {
  cbRequest: (err: unknown, req?: SrfSentRequest) => void;
  cbProvisional: (res: SrfResponseMessage) => void;
}

export type SrfRequestHandler = (req: SrfIncomingRequest, res: SrfServerResponse) => void;

export interface SrfLike {
  connect(opts: { host: string; port: number; secret: string }): unknown;
  /** Without a socket, the connected one; throws when there is none (a connection that never came up). */
  disconnect(socket?: unknown): void;
  on(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
  invite(handler: SrfRequestHandler): unknown;
  options(handler: SrfRequestHandler): unknown;
  createUAS(
    req: SrfIncomingRequest,
    res: SrfServerResponse,
    opts: { localSdp: string; headers: SrfHeaders },
    callback: (err: unknown, dlg?: SrfDialog) => void,
  ): unknown;
  createUAC(
    uri: string,
    opts: SrfUacOptions,
    callbacks: SrfUacCallbacks,
    callback: (err: unknown, answered?: SrfDialog | SrfDeferredAck) => void,
  ): unknown;
}
