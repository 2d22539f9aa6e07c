/**
 * The embedded SIP engine: our own RFC 3261 UA core on top of the transport and transaction layers, exposed
 * through the engine port (src/sip/port.ts). It dispatches requests to dialogs or to the call logic, answers
 * out-of-dialog OPTIONS (PBX trunk keep-alives), and refuses what a B2BUA endpoint should not take.
 */
import type { Logger } from '../../logger.ts';
import {
  ALLOWED_METHODS,
  type CertificateReload,
  type EngineStats,
  type InboundCall,
  type InviteScreen,
  type OutboundCall,
  type OutboundInviteOptions,
  type SipTargetStatus,
  type SipEngine,
} from '../port.ts';
import { getTag } from '../syntax/address.ts';
import { parseCSeq } from './cseq.ts';
import type { DialogTable } from './answered-invite.ts';
import type { EmbeddedDialog } from './dialog.ts';
import { dialogKey } from './dialog-state.ts';
import type { SipEndpoint, SipRequest, SipResponse, SipTransportName } from './message.ts';
import { resolveDestination } from './resolve.ts';
import type { SipTimerBase } from './timers.ts';
import { LateAnswers } from './late-answers.ts';
import { type EngineTargetOptions, NextHops } from './next-hops.ts';
import { buildResponse, ownString, responseDestination, topVia } from './transaction-helpers.ts';
import { TransactionLayer, type SipTransport } from './transaction.ts';
import { statelessReply } from './stateless.ts';
import type { ServerTransaction } from './server-transaction.ts';
import { TransportLayer } from './transport.ts';
import { EmbeddedInboundCall } from './uas.ts';
import { EmbeddedOutboundCall } from './uac.ts';
import type { UaContext } from './ua-core.ts';
import type { Via } from './via.ts';

export interface EmbeddedEngineOptions {
  host: string;
  port: number;
  transports: SipTransportName[];
  publicAddress: string;
  /** Written toward IPv6 peers instead of publicAddress (dual-stack); unset: publicAddress for every peer. */
  publicAddress6?: string;
  userAgent: string;
  maxMessageSize?: number;
  /** The TLS listener (transports has tls): its port and the certificate it serves (reloadable). */
  tls?: { port: number; certFile: string; keyFile: string };
  /** Extra trust anchors (PEM) for TLS connections the engine opens (toward Telnyx), on top of the system's. */
  tlsCaFile?: string;
  /** TLS connections will be opened: build their trust store at start instead of on the first call. */
  outboundTls?: boolean;
  /** CRLF keep-alive interval on idle TCP/TLS connections the engine opened (RFC 5626); 0: none. Default 30 s. */
  keepAliveIntervalMs?: number;
  logger: Logger;
  /** Override T1/T2/T4 (tests). */
  timers?: Partial<SipTimerBase>;
  /** Traffic counters (metrics). */
  observer?: {
    sipMessage(direction: 'in' | 'out', methodOrStatus: string | number): void;
    parseError(): void;
    /** One outbound INVITE attempt on one RFC 3263 target (`transport:address:port`) ended with `result`. */
    targetAttempt?(target: string, result: string): void;
  };
  /** RFC 3263 next hops of outbound INVITEs: DNS, OPTIONS probing, health (next-hops.ts). */
  targets?: EngineTargetOptions;
}

const label = (msg: SipRequest | SipResponse): string | number => (msg.kind === 'request' ? msg.method : msg.status);

/** How long an answered INVITE is remembered for merged-request detection (64*T1, RFC 3261 §8.2.2.2). */
const MERGE_MEMORY_MS = 32_000;

export class EmbeddedEngine implements SipEngine {
  readonly kind = 'embedded' as const;
  readonly #opts: EmbeddedEngineOptions;
  readonly #logger: Logger;
  #transport: TransportLayer | undefined;
  #tx: TransactionLayer | undefined;
  #ctx: UaContext | undefined;
  #inviteHandler: ((call: InboundCall) => void) | undefined;
  #inviteScreen: InviteScreen | undefined;
  /** INVITEs the screen refused statelessly (answered once, nothing kept). */
  #statelessRefusals = 0;
  readonly #dialogs = new Map<string, EmbeddedDialog>();
  /** Inbound INVITEs by server transaction (for CANCEL) and by From-tag/Call-ID/CSeq (for merged requests). */
  readonly #pendingInvites = new Map<ServerTransaction, EmbeddedInboundCall>();
  readonly #recentInvites = new Map<string, ServerTransaction>();
  readonly #nextHops: NextHops;
  readonly #lateAnswers = new LateAnswers();
  /** OPTIONS answer 503 while set (setDraining). */
  #draining = false;

  constructor(opts: EmbeddedEngineOptions) {
    this.#opts = opts;
    this.#logger = opts.logger;
    this.#nextHops = new NextHops(opts.targets ?? {}, this.#logger, opts.observer);
  }

  get localPort(): number {
    return this.#transport?.localPort ?? 0;
  }

  async start(): Promise<void> {
    const opts = this.#opts;
    const transport = new TransportLayer({
      host: opts.host,
      port: opts.port,
      transports: opts.transports,
      maxMessageSize: opts.maxMessageSize,
      tls: opts.tls,
      tlsCaFile: opts.tlsCaFile,
      outboundTls: opts.outboundTls,
      keepAliveIntervalMs: opts.keepAliveIntervalMs,
      logger: this.#logger,
    });
    await transport.start();
    const observer = opts.observer;
    // Count every message in and out without the layers above knowing about metrics.
    const observed: SipTransport = observer
      ? {
          send: (msg, dest) => {
            observer.sipMessage('out', label(msg));
            return transport.send(msg, dest);
          },
          onMessage: (h) =>
            transport.onMessage((msg, source) => {
              observer.sipMessage('in', label(msg));
              h(msg, source);
            }),
          onSendError: (h) => transport.onSendError(h),
        }
      : transport;
    if (observer) transport.onParseError(() => observer.parseError());
    // 100 Trying at once: the call logic waits on a Kallglot request (up to KALLGLOT_CREATE_DEADLINE_MS) before it
    // can say anything, and a PBX that hears nothing retransmits the INVITE.
    const tx = new TransactionLayer(observed, { timers: opts.timers, logger: this.#logger, trying100DelayMs: 0 });
    this.#transport = transport;
    this.#tx = tx;
    this.#ctx = {
      tx,
      logger: this.#logger,
      publicAddress: opts.publicAddress,
      publicAddress6: opts.publicAddress6,
      family: transport.family,
      localPort: transport.localPort,
      tlsPort: transport.tlsPort || undefined,
      userAgent: opts.userAgent,
      sendRaw: (msg, dest) => observed.send(msg, dest),
    };
    tx.screenNewInvites((req, via, source) => this.#screenInvite(req, via, source));
    tx.onRequest((req, stx) => this.#safely(() => this.#dispatch(req, stx)));
    tx.onCancel((inviteTx, cancel) => this.#safely(() => this.#pendingInvites.get(inviteTx)?.handleCancel(cancel)));
    tx.onStrayResponse((res) => this.#safely(() => this.#handleStrayResponse(res)));
    transport.onParseError((error, partial, source) =>
      this.#safely(() => this.#answerBadRequest(error, partial, source)),
    );
    this.#nextHops.start(this.#ctx);
  }

  async stop(): Promise<void> {
    this.#nextHops.stop();
    this.#lateAnswers.clear();
    this.#recentInvites.clear();
    this.#tx?.stop();
    await this.#transport?.stop();
    this.#transport = undefined;
  }

  reloadCertificates(): CertificateReload {
    return this.#transport?.reloadCertificates() ?? { outcome: 'none' };
  }

  onInvite(handler: (call: InboundCall) => void): void {
    this.#inviteHandler = handler;
  }

  screenInvites(screen: InviteScreen): void {
    this.#inviteScreen = screen;
  }

  invite(opts: OutboundInviteOptions): OutboundCall {
    const ctx = this.#context();
    const targets = this.#nextHops.router;
    const late = this.#lateAnswers;
    const watchLate = (branch: string, handler: (res: SipResponse) => void) =>
      late.watch(branch, handler, ctx.tx.timers.B);
    return new EmbeddedOutboundCall(ctx, opts, { ...this.#dialogTable, targets, watchLate });
  }

  targets(): SipTargetStatus[] {
    return this.#nextHops.snapshot();
  }

  setDraining(draining: boolean): void {
    this.#draining = draining;
  }

  stats(): EngineStats {
    const c = this.#transport?.counters ?? { received: 0, sent: 0, parseErrors: 0, dropped: 0 };
    return {
      messagesIn: c.received,
      messagesOut: c.sent,
      parseErrors: c.parseErrors,
      activeDialogs: this.#dialogs.size,
      activeTransactions: this.#tx?.activeCount() ?? 0,
      statelessRefusals: this.#statelessRefusals,
    };
  }

  #context(): UaContext {
    if (!this.#ctx) throw new Error('SIP engine not started');
    return this.#ctx;
  }

  /** One for the engine: every call and every lingering INVITE transaction (answered-invite.ts) shares it. */
  readonly #dialogTable: DialogTable = {
    addDialog: (d) => void this.#dialogs.set(d.id, d),
    removeDialog: (d) => void this.#dialogs.delete(d.id),
    findDialog: (id) => this.#dialogs.get(id),
    resolveNextHop: (uri, transport) => resolveDestination(uri, undefined, transport, this.#context().family),
  };

  #dispatch(req: SipRequest, stx: ServerTransaction | null): void {
    const tx = this.#context().tx;
    const maxForwards = req.headers.get('Max-Forwards');
    if (stx && maxForwards !== undefined && Number(maxForwards.trim()) <= 0 && req.method !== 'ACK') {
      stx.respond(tx.buildResponse(req, 483, 'Too Many Hops'));
      return;
    }
    const callId = req.headers.get('Call-ID') ?? '';
    const toTag = getTag(req.headers.get('To') ?? '');
    const fromTag = getTag(req.headers.get('From') ?? '') ?? '';
    if (toTag) {
      const dialog = this.#dialogs.get(dialogKey(callId, toTag, fromTag));
      if (dialog) dialog.handleRequest(req, stx);
      else if (stx) stx.respond(tx.buildResponse(req, 481, 'Call/Transaction Does Not Exist'));
      return;
    }
    if (!stx) return; // an ACK outside any dialog or transaction: nothing to do
    switch (req.method) {
      case 'INVITE':
        this.#newInvite(req, stx, callId, fromTag);
        return;
      case 'OPTIONS':
        // Draining: 503 takes this gateway out of a dispatcher that probes with OPTIONS (Kamailio's ds_ping).
        stx.respond(
          tx.buildResponse(req, this.#draining ? 503 : 200, this.#draining ? 'Service Unavailable' : 'OK', {
            headers: [
              ['Allow', ALLOWED_METHODS],
              ['Accept', 'application/sdp'],
              ['Server', this.#opts.userAgent],
              ...(this.#draining ? [['Retry-After', '30'] as [string, string]] : []),
            ],
          }),
        );
        return;
      case 'BYE':
      case 'UPDATE':
      case 'INFO':
      case 'PRACK':
        stx.respond(tx.buildResponse(req, 481, 'Call/Transaction Does Not Exist'));
        return;
      default:
        stx.respond(tx.buildResponse(req, 405, 'Method Not Allowed', { headers: [['Allow', ALLOWED_METHODS]] }));
    }
  }

  /**
   * A new INVITE before any state is kept for it: the call logic's screen may refuse it, statelessly. In-dialog
   * INVITEs (To tag) are not screened: they belong to calls already admitted. A screen that throws lets the INVITE
   * through, to be handled (and refused, if need be) the stateful way.
   */
  #screenInvite(req: SipRequest, via: Via, source: SipEndpoint): boolean {
    const screen = this.#inviteScreen;
    const ctx = this.#ctx;
    if (!screen || !ctx || getTag(req.headers.get('To') ?? '') !== undefined) return false;
    try {
      const refusal = screen({ callId: req.headers.get('Call-ID') ?? '', source });
      if (!refusal) return false;
      const res = statelessReply(req, via, refusal.status, refusal.reason, refusal.headers);
      ctx.sendRaw(res, responseDestination(via, source));
      this.#statelessRefusals++;
      return true;
    } catch (err) {
      this.#logger.error({ err }, 'INVITE screen failed');
      return false;
    }
  }

  #newInvite(req: SipRequest, stx: ServerTransaction, callId: string, fromTag: string): void {
    const tx = this.#context().tx;
    let cseq: number;
    try {
      cseq = parseCSeq(req.headers.get('CSeq') ?? '').seq;
    } catch {
      stx.respond(tx.buildResponse(req, 400, 'Bad CSeq'));
      return;
    }
    // Merged request (RFC 3261 §8.2.2.2): the same INVITE reached us by another path (a forking proxy upstream).
    const mergeKey = ownString(`${callId}\u0000${fromTag}\u0000${cseq}`); // kept 32 s: not a view of the INVITE
    const earlier = this.#recentInvites.get(mergeKey);
    if (earlier && earlier !== stx) {
      stx.respond(tx.buildResponse(req, 482, 'Loop Detected'));
      return;
    }
    if (!this.#inviteHandler) {
      stx.respond(tx.buildResponse(req, 503, 'Service Unavailable', { headers: [['Retry-After', '5']] }));
      return;
    }
    this.#recentInvites.set(mergeKey, stx);
    const call = new EmbeddedInboundCall(this.#context(), req, stx, {
      ...this.#dialogTable,
      completed: () => {
        this.#pendingInvites.delete(stx);
        // On the transaction layer's wheel: a Node timer per INVITE was thousands of Timeouts under load.
        tx.after(MERGE_MEMORY_MS, () => {
          if (this.#recentInvites.get(mergeKey) === stx) this.#recentInvites.delete(mergeKey);
        });
      },
    });
    this.#pendingInvites.set(stx, call);
    this.#inviteHandler(call);
  }

  /**
   * A 2xx that no client transaction claims any more (a retransmission after the INVITE transaction's Timer M, RFC
   * 6026): re-ACK it if it belongs to a dialog, else drop it. Forked and unwanted 2xx that arrive while the
   * transaction lives are ACKed and BYEd by the UAC (uac.ts), which still knows the request to build them from.
   */
  #handleStrayResponse(res: SipResponse): void {
    const cseq = res.headers.get('CSeq') ?? '';
    if (!/INVITE\s*$/i.test(cseq)) return;
    const key = dialogKey(
      res.headers.get('Call-ID') ?? '',
      getTag(res.headers.get('From') ?? '') ?? '',
      getTag(res.headers.get('To') ?? '') ?? '',
    );
    const dialog = res.status >= 200 && res.status < 300 ? this.#dialogs.get(key) : undefined;
    if (dialog) dialog.handleRetransmitted2xx(res);
    else this.#lateAnswers.take(res); // an attempt given up on after targetTimeoutMs (late-answers.ts)
  }

  #answerBadRequest(error: string, partial: SipRequest | undefined, source: SipEndpoint): void {
    this.#logger.warn(
      { error, source: `${source.transport}:${source.address}:${source.port}` },
      'malformed SIP message',
    );
    if (!partial || partial.method === 'ACK' || !this.#transport) return;
    const reason = `Bad Request (${error})`.replace(/[\r\n]/g, ' ').slice(0, 120);
    const res = buildResponse(partial, 400, reason);
    let dest = source;
    try {
      dest = responseDestination(topVia(partial), source);
    } catch {
      // an unparseable Via: answer the address it came from
    }
    this.#transport.send(res, dest);
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err }, 'SIP handler failed');
    }
  }
}
