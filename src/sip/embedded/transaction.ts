/**
 * Transaction layer (RFC 3261 §17) on top of any SipTransport: matches responses to client transactions and requests
 * to server transactions, absorbs retransmissions, answers CANCEL (§9.2) and hands everything else to the TU.
 */
import { silentLogger, type Logger } from '../../logger.ts';
import { ClientTransaction } from './client-transaction.ts';
import type { ClientTransactionHandler, ClientTransactionOptions, TransactionContext } from './client-transaction.ts';
import { parseCSeq } from './cseq.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipResponse } from './message.ts';
import { ServerTransaction } from './server-transaction.ts';
import type { ServerTransactionContext } from './server-transaction.ts';
import { TimerWheel } from './timer-wheel.ts';
import { sipTimers, TimerSet } from './timers.ts';
import type { SipTimerBase, SipTimerConfig } from './timers.ts';
import type { Via } from './via.ts';
import {
  buildCancel,
  buildResponse,
  clientKey,
  ownString,
  responseDestination,
  serverKey,
  topVia,
} from './transaction-helpers.ts';
import type { BuildResponseOptions } from './transaction-helpers.ts';

export { ClientTransaction } from './client-transaction.ts';
export type {
  ClientTransactionHandler,
  ClientTransactionOptions,
  ClientTransactionState,
} from './client-transaction.ts';
export { ServerTransaction } from './server-transaction.ts';
export type { ServerTransactionState } from './server-transaction.ts';
export { buildCancel, buildNon2xxAck, buildResponse, newBranch, responseDestination } from './transaction-helpers.ts';
export type { BuildResponseOptions } from './transaction-helpers.ts';

/** What the transaction layer needs from a transport; TransportLayer implements it, tests use an in-memory fake. */
export interface SipTransport {
  /** May return the bytes it sent, for a transaction to keep instead of the message (serialize.ts encodedCopy). */
  send(msg: SipMessage, dest: SipEndpoint): Buffer | undefined;
  onMessage(handler: (msg: SipMessage, source: SipEndpoint) => void): void;
  onSendError?(handler: (error: Error, msg: SipMessage, dest: SipEndpoint) => void): void;
}

export interface TransactionLayerOptions {
  /** T1/T2/T4 (and D) overrides; the rest is derived (§17, table 4). */
  timers?: Partial<SipTimerBase & { D: number }>;
  /** Delay before the automatic 100 Trying to an INVITE; 0 sends it at once. Default 200 ms (§17.2.1). */
  trying100DelayMs?: number;
  logger?: Logger;
}

export type RequestHandler = (req: SipRequest, tx: ServerTransaction | null) => void;
export type CancelHandler = (inviteTx: ServerTransaction, cancel: SipRequest) => void;
/** True when it answered the new INVITE itself (statelessly). */
export type InviteScreen = (req: SipRequest, via: Via, source: SipEndpoint) => boolean;

export interface TransactionCounters {
  clientTransactions: number;
  serverTransactions: number;
  retransmissions: number;
  absorbed: number;
  timeouts: number;
  strayResponses: number;
}

export class TransactionLayer {
  readonly timers: SipTimerConfig;
  readonly #transport: SipTransport;
  readonly #logger: Logger;
  readonly #clients = new Map<string, ClientTransaction>();
  readonly #servers = new Map<string, ServerTransaction>();
  readonly #retransmitters = new Set<TimerSet>();
  /** The one scheduler of every timer of this layer's transactions. */
  readonly #wheel = new TimerWheel();
  readonly #stats = { retransmissions: 0, absorbed: 0, timeouts: 0, strayResponses: 0 };
  readonly #clientCtx: TransactionContext;
  readonly #serverCtx: ServerTransactionContext;
  #requestHandler: RequestHandler | undefined;
  #cancelHandler: CancelHandler | undefined;
  #ackTimeoutHandler: ((tx: ServerTransaction) => void) | undefined;
  #strayResponseHandler: ((res: SipResponse) => void) | undefined;
  #inviteScreen: InviteScreen | undefined;
  #stopped = false;

  constructor(transport: SipTransport, opts: TransactionLayerOptions = {}) {
    this.#transport = transport;
    this.timers = sipTimers(opts.timers);
    this.#logger = opts.logger ?? silentLogger();
    const base = {
      timers: this.timers,
      wheel: this.#wheel,
      logger: this.#logger,
      send: (msg: SipMessage, dest: SipEndpoint) => this.#transport.send(msg, dest),
      stat: (name: 'retransmissions' | 'absorbed' | 'timeouts') => {
        this.#stats[name]++;
      },
    };
    this.#clientCtx = {
      ...base,
      terminated: (id, tx) => {
        if (this.#clients.get(id) === tx) this.#clients.delete(id);
      },
    };
    this.#serverCtx = {
      ...base,
      trying100DelayMs: opts.trying100DelayMs ?? 200,
      terminated: (id, tx) => {
        if (this.#servers.get(id) === tx) this.#servers.delete(id);
      },
      ackTimeout: (tx) => this.#safe('onAckTimeout', () => this.#ackTimeoutHandler?.(tx)),
    };
    transport.onMessage((msg, source) => this.#safe('receive', () => this.#receive(msg, source)));
    transport.onSendError?.((error, msg, dest) => this.#safe('sendError', () => this.#sendFailed(error, msg, dest)));
  }

  /** New requests that match no transaction. `tx` is null for an ACK (to a 2xx: it belongs to the dialog). */
  onRequest(handler: RequestHandler): void {
    this.#requestHandler = handler;
  }

  /**
   * A CANCEL matched a pending INVITE server transaction; the CANCEL has already been answered 200 and the TU should
   * answer the INVITE with 487. Without a handler the layer sends the 487 itself.
   */
  onCancel(handler: CancelHandler): void {
    this.#cancelHandler = handler;
  }

  /** Timer H fired: a 300-699 answer to an INVITE was never ACKed. */
  onAckTimeout(handler: (tx: ServerTransaction) => void): void {
    this.#ackTimeoutHandler = handler;
  }

  /**
   * Called for each new INVITE (no server transaction matches it) before one is created: returning true means the
   * screen answered it statelessly, and the layer keeps nothing for it (no transaction, no 100 Trying).
   */
  screenNewInvites(screen: InviteScreen): void {
    this.#inviteScreen = screen;
  }

  /** Responses that match no client transaction (e.g. a 2xx retransmission after the transaction ended). */
  onStrayResponse(handler: (res: SipResponse) => void): void {
    this.#strayResponseHandler = handler;
  }

  /**
   * Start a client transaction. The request must be complete, with a top Via carrying a fresh `newBranch()`.
   * CANCEL requests (see buildCancel) also arm the §9.1 64*T1 guard on the INVITE transaction they cancel.
   */
  sendRequest(
    req: SipRequest,
    dest: SipEndpoint,
    handler: ClientTransactionHandler,
    opts: ClientTransactionOptions = {},
  ): ClientTransaction {
    if (req.method === 'ACK') throw new Error('ACK is not sent in a client transaction; send it through the transport');
    const branch = topVia(req).params.branch;
    if (typeof branch !== 'string' || !branch) throw new Error('request top Via has no branch');
    const id = clientKey(branch, req.method);
    const tx = new ClientTransaction(id, req, dest, handler, this.#clientCtx, opts);
    const previous = this.#clients.get(id);
    if (previous) {
      this.#logger.warn(
        { method: req.method, branch },
        'branch reused by a new client transaction; dropping the old one',
      );
      previous.terminate();
    }
    this.#clients.set(id, tx);
    if (req.method === 'CANCEL') this.#clients.get(clientKey(branch, 'INVITE'))?.cancelSent();
    tx.start();
    return tx;
  }

  /**
   * Retransmit a 2xx to an INVITE until the dialog sees the ACK (§13.3.1.4): call it after `tx.respond(2xx)`, with
   * `tx.responseDest`. Intervals start at T1 and double up to T2; after 64*T1 without ACK `onGiveUp` runs (the
   * dialog should then send BYE). Returns a function that stops the retransmissions (call it when the ACK arrives).
   */
  retransmit2xxUntilAck(
    response: SipResponse,
    dest: SipEndpoint,
    isAcked: () => boolean,
    onGiveUp?: () => void,
  ): () => void {
    const timers = new TimerSet(this.#wheel);
    const stop = (): void => {
      timers.clearAll();
      this.#retransmitters.delete(timers);
    };
    if (this.#stopped) return stop;
    this.#retransmitters.add(timers);
    const tick = (interval: number): void => {
      timers.set('retransmit', interval, () => {
        if (isAcked()) return stop();
        this.#stats.retransmissions++;
        this.#safe('retransmit2xx', () => this.#transport.send(response, dest));
        tick(Math.min(interval * 2, this.timers.T2));
      });
    };
    tick(this.timers.T1);
    timers.set('giveUp', 64 * this.timers.T1, () => {
      stop();
      if (!isAcked()) {
        this.#stats.timeouts++;
        this.#safe('onGiveUp', () => onGiveUp?.());
      }
    });
    return stop;
  }

  /**
   * Run `fn` after `ms` on the layer's timer wheel (no Node timer of its own); dropped by stop(). For the TU's
   * bookkeeping that lives as long as a transaction (the engine's merged-request memory).
   */
  after(ms: number, fn: () => void): void {
    if (!this.#stopped) this.#wheel.schedule(ms, () => this.#safe('after', fn));
  }

  /** Same as the free function; on the layer so the UA core can reach it through its context. */
  buildResponse(req: SipRequest, status: number, reason?: string, opts?: BuildResponseOptions): SipResponse {
    return buildResponse(req, status, reason, opts);
  }

  buildCancel(invite: SipRequest): SipRequest {
    return buildCancel(invite);
  }

  /** Client + server transactions alive (for metrics). */
  activeCount(): number {
    return this.#clients.size + this.#servers.size;
  }

  get counters(): TransactionCounters {
    return { clientTransactions: this.#clients.size, serverTransactions: this.#servers.size, ...this.#stats };
  }

  /** Drop every transaction and timer without callbacks; incoming messages are ignored afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const tx of [...this.#clients.values()]) tx.terminate();
    for (const tx of [...this.#servers.values()]) tx.terminate();
    for (const t of this.#retransmitters) t.clearAll();
    this.#retransmitters.clear();
    this.#clients.clear();
    this.#servers.clear();
    this.#wheel.clear();
  }

  #receive(msg: SipMessage, source: SipEndpoint): void {
    if (this.#stopped) return;
    if (msg.kind === 'response') this.#receiveResponse(msg);
    else this.#receiveRequest(msg, source);
  }

  #receiveResponse(res: SipResponse): void {
    let key: string | undefined;
    try {
      const branch = topVia(res).params.branch;
      const { method } = parseCSeq(res.headers.get('CSeq') ?? '');
      if (typeof branch === 'string') key = clientKey(branch, method);
    } catch (err) {
      this.#logger.debug({ err }, 'dropping response with unusable Via/CSeq');
      return;
    }
    const tx = key === undefined ? undefined : this.#clients.get(key);
    if (tx) {
      tx.receive(res);
      return;
    }
    this.#stats.strayResponses++;
    if (this.#strayResponseHandler) this.#strayResponseHandler(res);
    else this.#logger.debug({ status: res.status }, 'response matches no client transaction');
  }

  #receiveRequest(req: SipRequest, source: SipEndpoint): void {
    let via: Via;
    try {
      via = topVia(req);
    } catch (err) {
      this.#logger.debug({ err, method: req.method }, 'dropping request with unusable Via');
      return;
    }
    let cseqMethod: string;
    try {
      cseqMethod = parseCSeq(req.headers.get('CSeq') ?? '').method;
    } catch {
      cseqMethod = '';
    }
    if (cseqMethod !== req.method) {
      // §8.2: the method in CSeq must match the request line; answer statelessly (never for ACK).
      if (req.method !== 'ACK')
        this.#transport.send(buildResponse(req, 400, 'Bad CSeq'), responseDestination(via, source));
      return;
    }
    const id = serverKey(req, via, req.method);
    const existing = this.#servers.get(id);
    if (req.method === 'ACK') {
      if (existing?.isInvite && existing.receiveAck()) return;
      this.#deliverRequest(req, null);
      return;
    }
    if (existing) {
      existing.receiveRetransmission();
      return;
    }
    if (req.method === 'INVITE' && this.#inviteScreen?.(req, via, source)) return;
    const key = ownString(id); // kept as long as the transaction (up to 32 s): not a view of the received text
    const tx = new ServerTransaction(key, req, source, responseDestination(via, source), this.#serverCtx);
    this.#servers.set(key, tx);
    tx.start();
    if (req.method === 'CANCEL') {
      this.#answerCancel(tx, req, via);
      return;
    }
    this.#deliverRequest(req, tx);
  }

  #deliverRequest(req: SipRequest, tx: ServerTransaction | null): void {
    if (!this.#requestHandler) {
      this.#logger.warn({ method: req.method }, 'no request handler registered');
      if (tx) tx.respond(buildResponse(req, 500, 'Server Internal Error'));
      return;
    }
    try {
      this.#requestHandler(req, tx);
    } catch (err) {
      this.#logger.error({ err, method: req.method }, 'request handler threw');
      if (tx && !tx.hasFinalResponse) tx.respond(buildResponse(req, 500, 'Server Internal Error'));
    }
  }

  /** §9.2: CANCEL matches the INVITE server transaction with the same branch/sent-by. */
  #answerCancel(cancelTx: ServerTransaction, cancel: SipRequest, via: Via): void {
    const invite = this.#servers.get(serverKey(cancel, via, 'INVITE'));
    if (!invite) {
      cancelTx.respond(buildResponse(cancel, 481));
      return;
    }
    // §9.2: the To tag of the CANCEL's 200 should equal the one the INVITE's responses carry.
    const toTag = invite.lastToTag;
    cancelTx.respond(buildResponse(cancel, 200, undefined, toTag ? { toTag } : {}));
    if (invite.hasFinalResponse) return;
    const cancelHandler = this.#cancelHandler;
    if (cancelHandler) {
      this.#safe('onCancel', () => cancelHandler(invite, cancel));
    } else if (invite.request) {
      invite.respond(buildResponse(invite.request, 487, undefined, toTag ? { toTag } : {}));
    }
  }

  #sendFailed(error: Error, msg: SipMessage, dest: SipEndpoint): void {
    this.#logger.warn({ err: error, dest, kind: msg.kind }, 'transport could not send message');
    if (msg.kind !== 'request' || msg.method === 'ACK') return;
    let branch: unknown;
    try {
      branch = topVia(msg).params.branch;
    } catch {
      return;
    }
    if (typeof branch !== 'string') return;
    const tx = this.#clients.get(clientKey(branch, msg.method));
    if (tx && tx.request === msg) tx.transportError();
  }

  #safe(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err, what }, 'transaction layer callback failed');
    }
  }
}
