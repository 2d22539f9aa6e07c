/**
 * The drachtio adapter of the engine port: drachtio-server (a separate C++ process) runs the SIP stack, and
 * drachtio-srf, its Node client, hands us requests over the admin connection. drachtio-server already fulfils the
 * port's engine duties (retransmissions, 100 Trying, ACKs, CANCEL matching and 487, BYE 200); the adapter maps
 * drachtio-srf's objects onto InboundCall/OutboundCall/Dialog and adds what the port promises beyond that.
 */
import Srf from 'drachtio-srf';
import type { GatewayConfig } from '../../config/load.ts';
import type { Logger } from '../../logger.ts';
import {
  ALLOWED_METHODS,
  type EngineStats,
  type InboundCall,
  type OutboundCall,
  type OutboundInviteOptions,
  type SipEngine,
} from '../port.ts';
import { getTag } from '../syntax/address.ts';
import type { DrachtioDialog } from './dialog.ts';
import { DrachtioInboundCall } from './inbound.ts';
import { sendResponse } from './messages.ts';
import { DrachtioOutboundCall } from './outbound.ts';
import type { SrfIncomingRequest, SrfLike, SrfServerResponse } from './srf-types.ts';
import { type AdapterContext, SipTraffic, type SipTrafficSink } from './traffic.ts';

export type SrfFactory = () => SrfLike;

const CONNECT_TIMEOUT_MS = 5_000;

export class DrachtioEngine implements SipEngine {
  readonly kind = 'drachtio' as const;
  readonly #config: GatewayConfig;
  readonly #logger: Logger;
  readonly #traffic: SipTraffic;
  readonly #ctx: AdapterContext;
  readonly #srf: SrfLike;
  #inviteHandler: ((call: InboundCall) => void) | undefined;
  #inviteRouted = false;
  #connected = false;
  #sipPort = 0;
  /** OPTIONS answer 503 while set (setDraining). */
  #draining = false;
  readonly #dialogs = new Set<DrachtioDialog>();
  /** INVITEs without a final response yet, both directions. */
  readonly #pendingInbound = new Set<DrachtioInboundCall>();
  readonly #pendingOutbound = new Set<DrachtioOutboundCall>();

  constructor(
    config: GatewayConfig,
    logger: Logger,
    srfFactory: SrfFactory = () => new Srf() as unknown as SrfLike,
    observer?: SipTrafficSink,
  ) {
    this.#config = config;
    this.#logger = logger;
    this.#traffic = new SipTraffic(observer);
    this.#ctx = { logger, traffic: this.#traffic };
    this.#srf = srfFactory();
    // An 'error' event without a listener would crash the process; drachtio-srf reconnects by itself.
    this.#srf.on('error', (err: Error) => {
      if (this.#connected) this.#logger.error({ err }, 'drachtio-server connection error');
    });
    this.#srf.on('connect', (err: Error | null | undefined, hostport?: string) => {
      if (err) return;
      this.#connected = true;
      this.#sipPort = sipPortOf(hostport) ?? this.#sipPort;
    });
    // Keep-alive OPTIONS from the PBX trunk, answered like the embedded engine does (routes registered before the
    // connection are sent to drachtio-server once it is up; in-dialog OPTIONS go to the dialog first).
    this.#srf.options((req, res) => this.#safely(() => this.#answerOptions(req, res)));
    this.#srf.on('reconnecting', (info?: { attempt?: number }) => {
      if (this.#connected) this.#logger.warn({ attempt: info?.attempt }, 'reconnecting to drachtio-server');
    });
  }

  /** The SIP port drachtio-server listens on (from its hostport at connect), else the configured one. */
  get localPort(): number {
    return this.#sipPort || this.#config.sip.port;
  }

  async start(): Promise<void> {
    const { host, port, secret } = this.#config.drachtio;
    const where = `drachtio-server at ${host}:${port}`;
    await new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        clearTimeout(timer);
        this.#srf.removeListener('connect', onConnect);
        this.#srf.removeListener('error', onError);
      };
      const fail = (why: string, socket?: unknown) => {
        cleanup();
        this.#disconnect(socket);
        reject(new Error(`cannot connect to ${where}: ${why}`));
      };
      const onConnect = (err: Error | null | undefined, hostport?: string) => {
        if (err) return fail(err.message);
        cleanup();
        this.#logger.info({ drachtio: `${host}:${port}`, sip: hostport }, 'connected to drachtio-server');
        resolve();
      };
      // drachtio-srf passes the failed socket along: the only handle that stops its reconnect loop for a connection
      // that never came up (a bare disconnect() needs a connected socket).
      const onError = (err: Error, socket?: unknown) => fail(err.message, socket);
      const timer = setTimeout(() => fail(`no connection within ${CONNECT_TIMEOUT_MS / 1000} s`), CONNECT_TIMEOUT_MS);
      this.#srf.on('connect', onConnect);
      this.#srf.on('error', onError);
      this.#srf.connect({ host, port, secret });
    });
  }

  async stop(): Promise<void> {
    this.#disconnect();
  }

  onInvite(handler: (call: InboundCall) => void): void {
    this.#inviteHandler = handler;
    if (this.#inviteRouted) return;
    // Registering asks drachtio-server to route INVITEs to us; do it once, the handler can be swapped.
    this.#inviteRouted = true;
    this.#srf.invite((req, res) => this.#safely(() => this.#newInvite(req, res)));
  }

  invite(opts: OutboundInviteOptions): OutboundCall {
    let done = false;
    const call = new DrachtioOutboundCall(this.#srf, opts, {
      ...this.#ctx,
      addDialog: (d) => void this.#dialogs.add(d),
      removeDialog: (d) => void this.#dialogs.delete(d),
      completed: (c) => {
        done = true;
        this.#pendingOutbound.delete(c);
      },
    });
    // createUAC can refuse synchronously, in which case the call is already complete.
    if (!done) this.#pendingOutbound.add(call);
    return call;
  }

  /**
   * Messages as the adapter sees them (traffic.ts); parse errors are drachtio-server's to count. Dialogs and INVITE
   * transactions are the ones this adapter tracks.
   */
  stats(): EngineStats {
    return {
      messagesIn: this.#traffic.messagesIn,
      messagesOut: this.#traffic.messagesOut,
      parseErrors: 0,
      activeDialogs: this.#dialogs.size,
      activeTransactions: this.#pendingInbound.size + this.#pendingOutbound.size,
    };
  }

  #newInvite(req: SrfIncomingRequest, res: SrfServerResponse): void {
    this.#traffic.in('INVITE');
    // An INVITE with a To-tag that matched no drachtio-srf dialog (the dialog middleware runs first).
    if (getTag(req.get('To') ?? '')) {
      sendResponse(res, 481, { reason: 'Call/Transaction Does Not Exist' }, {}, this.#ctx);
      return;
    }
    const handler = this.#inviteHandler;
    if (!handler) {
      sendResponse(res, 503, { reason: 'Service Unavailable', headers: [['Retry-After', '5']] }, {}, this.#ctx);
      return;
    }
    const call = new DrachtioInboundCall(this.#srf, req, res, {
      ...this.#ctx,
      addDialog: (d) => void this.#dialogs.add(d),
      removeDialog: (d) => void this.#dialogs.delete(d),
      completed: (c) => void this.#pendingInbound.delete(c),
    });
    this.#pendingInbound.add(call);
    handler(call);
  }

  setDraining(draining: boolean): void {
    this.#draining = draining;
  }

  #answerOptions(_req: SrfIncomingRequest, res: SrfServerResponse): void {
    this.#traffic.in('OPTIONS');
    // Draining: 503 takes this gateway out of a dispatcher that probes with OPTIONS (Kamailio's ds_ping).
    sendResponse(
      res,
      this.#draining ? 503 : 200,
      {
        headers: [
          ['Allow', ALLOWED_METHODS],
          ['Accept', 'application/sdp'],
          ...(this.#draining ? [['Retry-After', '30'] as [string, string]] : []),
        ],
      },
      {},
      this.#ctx,
    );
  }

  #disconnect(socket?: unknown): void {
    this.#connected = false;
    try {
      this.#srf.disconnect(socket);
    } catch (err) {
      // No socket to close: never connected and no failed socket either (the connect timed out). drachtio-srf may
      // keep retrying in the background; start() has failed, and the daemon exits on that.
      this.#logger.debug({ err }, 'drachtio disconnect without a socket');
    }
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err }, 'drachtio request handler failed');
    }
  }
}

/** drachtio-server reports its SIP contacts as e.g. "udp/10.0.0.5:5060,tcp/10.0.0.5:5060". */
function sipPortOf(hostport: string | undefined): number | undefined {
  const m = /:(\d+)(?:,|$)/.exec(hostport ?? '');
  return m ? Number(m[1]) : undefined;
}
