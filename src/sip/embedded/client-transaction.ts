/**
 * Client transactions (RFC 3261 §17.1): INVITE (§17.1.1, with the RFC 6026 Accepted state) and non-INVITE (§17.1.2).
 * Created and fed by TransactionLayer; the TU sees only the handler callbacks.
 *
 * A transaction lingers after its final response (timers D, K, M: up to 32 s) only to absorb retransmissions. From
 * its final response on it keeps just what that needs (the ACK to resend, its keys), and drops the request and, in
 * Completed, the TU's handler: the handler's closures reach the whole call (its session, dialogs, loggers), which
 * would otherwise stay in memory for 32 s after the call ended.
 */
import type { Logger } from '../../logger.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipResponse } from './message.ts';
import type { TimerWheel } from './timer-wheel.ts';
import { TimerSet } from './timers.ts';
import type { SipTimerConfig } from './timers.ts';
import { encodedCopy } from './serialize.ts';
import { buildNon2xxAck } from './transaction-helpers.ts';

/** What a transaction needs from the layer that owns it. */
export interface TransactionContext {
  readonly timers: SipTimerConfig;
  /** The layer's scheduler, shared by all its transactions. */
  readonly wheel?: TimerWheel;
  readonly logger: Logger;
  /** May return the bytes sent: see serialize.ts encodedCopy. */
  send(msg: SipMessage, dest: SipEndpoint): Buffer | undefined;
  /** Called exactly once when the transaction reaches Terminated so the layer drops it from its table. */
  terminated(id: string, tx: object): void;
  stat(name: 'retransmissions' | 'absorbed' | 'timeouts'): void;
}

export interface ClientTransactionHandler {
  /** Every provisional, the final response, and (INVITE) every 2xx including retransmissions and forks. */
  onResponse(res: SipResponse): void;
  /** Timer B/F fired (the TU should treat it as 408), or 64*T1 passed after a CANCEL without a final response. */
  onTimeout(): void;
  /** The transport could not deliver the request (treat as 503, §8.1.3.1). */
  onTransportError(): void;
}

export interface ClientTransactionOptions {
  /**
   * Timer B (INVITE: until the first response) or F (non-INVITE: until the final one), instead of 64*T1. A UAC trying
   * several next hops (RFC 3263 §4.3) gives each only a few seconds; the transaction still ends as on Timer B/F.
   */
  timeoutMs?: number;
}

export type ClientTransactionState = 'calling' | 'trying' | 'proceeding' | 'completed' | 'accepted' | 'terminated';

/** The handler of a transaction past the point where the TU can be told anything. */
const RELEASED_HANDLER: ClientTransactionHandler = {
  onResponse: () => undefined,
  onTimeout: () => undefined,
  onTransportError: () => undefined,
};

export class ClientTransaction {
  readonly id: string;
  readonly dest: SipEndpoint;
  readonly method: string;
  readonly isInvite: boolean;
  #currentState: ClientTransactionState;
  /** Until the final response: (re)transmitted while Calling/Trying/Proceeding. */
  #request: SipRequest | undefined;
  #handler: ClientTransactionHandler;
  readonly #ctx: TransactionContext;
  readonly #timers: TimerSet;
  /** Timer B/F of this transaction when the TU wants it shorter than 64*T1 (RFC 3263 failover). */
  readonly #timeoutMs: number | undefined;
  #ack: SipRequest | undefined;

  constructor(
    id: string,
    request: SipRequest,
    dest: SipEndpoint,
    handler: ClientTransactionHandler,
    ctx: TransactionContext,
    opts: ClientTransactionOptions = {},
  ) {
    this.id = id;
    this.#request = request;
    this.dest = dest;
    this.method = request.method;
    this.isInvite = request.method === 'INVITE';
    this.#currentState = this.isInvite ? 'calling' : 'trying';
    this.#handler = handler;
    this.#ctx = ctx;
    this.#timers = new TimerSet(ctx.wheel);
    this.#timeoutMs = opts.timeoutMs;
  }

  /** The request, until the final response (or termination) released it. */
  get request(): SipRequest | undefined {
    return this.#request;
  }

  get state(): ClientTransactionState {
    return this.#currentState;
  }

  /** True once a 1xx arrived: RFC 3261 §9.1 says a CANCEL must not be sent before that. */
  get provisionalReceived(): boolean {
    return this.#currentState !== 'calling' && this.#currentState !== 'trying';
  }

  get #reliable(): boolean {
    return this.dest.transport !== 'udp'; // TCP and TLS
  }

  /** Send the request and arm the retransmit (A/E, UDP only) and timeout (B/F) timers. Called by the layer. */
  start(): void {
    const t = this.#ctx.timers;
    const request = this.#request;
    if (request === undefined) return;
    this.#ctx.send(request, this.dest);
    if (this.#currentState === 'terminated') return; // a synchronous transport error already ended us
    if (!this.#reliable) this.#scheduleRetransmit(this.isInvite ? t.A : t.E);
    this.#timers.set('timeout', this.#timeoutMs ?? (this.isInvite ? t.B : t.F), () => this.#timedOut());
  }

  /** Timer B/F, or the 64*T1 guard after a CANCEL, fired: the transaction ends and the TU is told. */
  #timedOut(): void {
    const handler = this.#handler; // terminate() releases it
    this.#ctx.stat('timeouts');
    this.terminate();
    this.#call('onTimeout', () => handler.onTimeout());
  }

  #scheduleRetransmit(interval: number): void {
    this.#timers.set('retransmit', interval, () => {
      const s = this.#currentState;
      const request = this.#request;
      if ((s !== 'calling' && s !== 'trying' && s !== 'proceeding') || request === undefined) return;
      this.#ctx.stat('retransmissions');
      this.#ctx.send(request, this.dest);
      const t = this.#ctx.timers;
      // Timer A doubles without a cap; timer E doubles up to T2, and is T2 flat once a provisional arrived.
      const next = this.isInvite ? interval * 2 : s === 'proceeding' ? t.T2 : Math.min(interval * 2, t.T2);
      this.#scheduleRetransmit(next);
    });
  }

  /** A response matched this transaction (§17.1.3). */
  receive(res: SipResponse): void {
    const s = this.#currentState;
    if (s === 'calling' || s === 'trying' || s === 'proceeding') {
      if (res.status < 200) this.#onProvisional(res);
      else if (this.isInvite) this.#onInviteFinal(res);
      else this.#onNonInviteFinal(res);
      return;
    }
    if (s === 'accepted') {
      // RFC 6026 §8.4: 2xx retransmissions and forked 2xx go to the TU, which ACKs them end to end.
      if (res.status >= 200 && res.status < 300) this.#deliver(res);
      else this.#ctx.stat('absorbed');
      return;
    }
    if (s === 'completed') {
      this.#ctx.stat('absorbed');
      // §17.1.1.2: a retransmitted non-2xx final means our ACK got lost; send it again.
      if (this.isInvite && res.status >= 300 && this.#ack) this.#ctx.send(this.#ack, this.dest);
    }
  }

  #onProvisional(res: SipResponse): void {
    if (this.isInvite) {
      // §17.1.1.2: no more INVITE retransmissions once the UAS answered; timer B only matters in Calling.
      this.#timers.clear('retransmit');
      this.#timers.clear('timeout');
    }
    this.#currentState = 'proceeding';
    this.#deliver(res);
  }

  #onInviteFinal(res: SipResponse): void {
    const t = this.#ctx.timers;
    this.#timers.clearAll();
    const request = this.#request;
    this.#request = undefined; // never sent again
    if (res.status < 300) {
      this.#currentState = 'accepted';
      this.#timers.set('M', t.M, () => this.terminate());
      // The handler stays (until the TU slims it, keepForLate2xx): in Accepted the TU still gets 2xx retransmissions
      // and forked 2xx (RFC 6026 §8.4).
      this.#deliver(res);
      return;
    }
    this.#currentState = 'completed';
    try {
      if (request) {
        const ack = buildNon2xxAck(request, res);
        this.#ack = encodedCopy(ack, this.#ctx.send(ack, this.dest) ?? undefined);
      }
    } catch (err) {
      this.#ctx.logger.warn({ err, status: res.status }, 'could not build ACK for non-2xx final response');
    }
    this.#deliver(res);
    this.#handler = RELEASED_HANDLER; // Completed only resends the ACK: the TU hears nothing more
    if (this.#reliable) this.terminate();
    else if (this.#currentState === 'completed') this.#timers.set('D', t.D, () => this.terminate());
  }

  #onNonInviteFinal(res: SipResponse): void {
    this.#timers.clearAll();
    this.#currentState = 'completed';
    this.#request = undefined;
    this.#deliver(res);
    this.#handler = RELEASED_HANDLER; // Completed only absorbs retransmitted finals
    if (this.#reliable) this.terminate();
    else if (this.#currentState === 'completed') this.#timers.set('K', this.#ctx.timers.K, () => this.terminate());
  }

  /**
   * Accepted (RFC 6026): the TU got its 2xx and names what handles later ones (retransmissions, forks); the TU's
   * handler, whose closures reach the whole call, is dropped for the 32 s the transaction still lingers.
   */
  keepForLate2xx(onLate2xx: (res: SipResponse) => void): void {
    if (this.#currentState !== 'accepted') return;
    this.#handler = { ...RELEASED_HANDLER, onResponse: onLate2xx };
  }

  /**
   * A CANCEL for this INVITE went out (§9.1): if no final response arrives within 64*T1 the TU is told via onTimeout
   * and the transaction is dropped, so a UAS that never answers the CANCEL cannot leak it.
   */
  cancelSent(): void {
    if (!this.isInvite || (this.#currentState !== 'calling' && this.#currentState !== 'proceeding')) return;
    if (this.#timers.has('timeout')) return; // timer B (same 64*T1) is still running in Calling
    this.#timers.set('timeout', 64 * this.#ctx.timers.T1, () => this.#timedOut());
  }

  /** The transport failed to deliver our request (§17.1.4). */
  transportError(): void {
    const s = this.#currentState;
    if (s !== 'calling' && s !== 'trying' && s !== 'proceeding') return;
    const handler = this.#handler; // terminate() releases it
    this.terminate();
    this.#call('onTransportError', () => handler.onTransportError());
  }

  /** Drop the transaction without telling the TU (used by the layer's stop() and by the TU giving up). */
  terminate(): void {
    if (this.#currentState === 'terminated') return;
    this.#currentState = 'terminated';
    this.#timers.clearAll();
    this.#request = undefined;
    this.#handler = RELEASED_HANDLER;
    this.#ack = undefined;
    this.#ctx.terminated(this.id, this);
  }

  #deliver(res: SipResponse): void {
    this.#call('onResponse', () => this.#handler.onResponse(res));
  }

  #call(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#ctx.logger.error({ err, method: this.method, callback: what }, 'client transaction handler threw');
    }
  }
}
