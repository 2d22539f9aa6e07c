/**
 * Server transactions (RFC 3261 §17.2): INVITE (§17.2.1, with the RFC 6026 Accepted state so retransmitted INVITEs
 * after a 2xx are absorbed instead of reaching the TU as new calls) and non-INVITE (§17.2.2).
 *
 * A transaction lingers after its final response (timers I, J, L: up to 32 s) to absorb retransmissions. From the
 * final response on it drops the request; it keeps the final response only while a retransmitted request must be
 * answered with it (Completed), and otherwise just its status and To tag (which a late CANCEL's 200 copies).
 */
import { getTag } from '../syntax/address.ts';
import type { SipEndpoint, SipRequest, SipResponse } from './message.ts';
import type { TransactionContext } from './client-transaction.ts';
import { encodedCopy } from './serialize.ts';
import { TimerSet } from './timers.ts';
import { buildResponse } from './transaction-helpers.ts';

export interface ServerTransactionContext extends TransactionContext {
  /** Timer H fired: a 300-699 answer to an INVITE was never ACKed. */
  ackTimeout(tx: ServerTransaction): void;
  /** Delay before an automatic 100 Trying for INVITE (§17.2.1: 200 ms unless the TU answers sooner). */
  readonly trying100DelayMs: number;
}

export type ServerTransactionState = 'trying' | 'proceeding' | 'completed' | 'confirmed' | 'accepted' | 'terminated';

export class ServerTransaction {
  readonly id: string;
  /** Where the request came from (for TCP: the connection to answer on). */
  readonly source: SipEndpoint;
  /** Where responses go (§18.2.2); also the destination for the TU's 2xx retransmissions. */
  readonly responseDest: SipEndpoint;
  readonly method: string;
  readonly isInvite: boolean;
  #currentState: ServerTransactionState;
  /** Until the final response: the TU and the automatic 100 Trying build responses from it. */
  #request: SipRequest | undefined;
  /** The last response sent, while a retransmitted request may have to be answered with it. */
  #last: SipResponse | undefined;
  #lastStatus = 0;
  /** The To tag of the last response, once the response itself is released (a header value would pin the datagram). */
  #releasedToTag: string | undefined;
  readonly #ctx: ServerTransactionContext;
  readonly #timers: TimerSet;

  constructor(
    id: string,
    request: SipRequest,
    source: SipEndpoint,
    responseDest: SipEndpoint,
    ctx: ServerTransactionContext,
  ) {
    this.id = id;
    this.#request = request;
    this.source = source;
    this.responseDest = responseDest;
    this.method = request.method;
    this.isInvite = request.method === 'INVITE';
    this.#currentState = this.isInvite ? 'proceeding' : 'trying';
    this.#ctx = ctx;
    this.#timers = new TimerSet(ctx.wheel);
  }

  get state(): ServerTransactionState {
    return this.#currentState;
  }

  /** The request, until the final response released it. */
  get request(): SipRequest | undefined {
    return this.#request;
  }

  /** The last response sent (provisional or final), while it may still be retransmitted (not after Completed). */
  get lastResponse(): SipResponse | undefined {
    return this.#last;
  }

  /** The To tag of the last response sent (the UAS's dialog tag), kept after the response itself is released. */
  get lastToTag(): string | undefined {
    const to = this.#last?.headers.get('To');
    return to === undefined ? this.#releasedToTag : getTag(to);
  }

  /** True once a final response (200-699) has been sent. */
  get hasFinalResponse(): boolean {
    return this.#lastStatus >= 200;
  }

  get #reliable(): boolean {
    return this.responseDest.transport !== 'udp'; // TCP and TLS
  }

  /** Arm the automatic 100 Trying for INVITE. Called by the layer before the TU sees the request. */
  start(): void {
    if (!this.isInvite) return;
    const send100 = (): void => {
      if (this.#last === undefined && this.#currentState === 'proceeding' && this.#request)
        this.respond(buildResponse(this.#request, 100));
    };
    if (this.#ctx.trying100DelayMs <= 0) send100();
    else this.#timers.set('trying', this.#ctx.trying100DelayMs, send100);
  }

  /** Send a response from the TU. Responses after the final one are ignored (except 2xx resends in Accepted). */
  respond(res: SipResponse): void {
    const s = this.#currentState;
    if (s === 'accepted' && res.status >= 200 && res.status < 300) {
      this.#ctx.send(res, this.responseDest); // TU retransmitting its 2xx (§13.3.1.4)
      return;
    }
    if (s !== 'trying' && s !== 'proceeding') {
      this.#ctx.logger.warn(
        { method: this.method, status: res.status, state: s },
        'response after final response ignored',
      );
      return;
    }
    this.#timers.clear('trying');
    this.#last = res;
    this.#lastStatus = res.status;
    const wire = this.#ctx.send(res, this.responseDest) ?? undefined;
    if (res.status < 200) {
      this.#currentState = 'proceeding';
      return;
    }
    this.#request = undefined;
    const t = this.#ctx.timers;
    if (this.isInvite && res.status < 300) {
      this.#currentState = 'accepted';
      this.#releaseLast(); // Accepted absorbs retransmitted INVITEs silently: the TU resends its 2xx
      this.#timers.set('L', t.L, () => this.terminate());
      return;
    }
    this.#currentState = 'completed';
    if (this.#reliable && !this.isInvite) {
      this.terminate();
      return;
    }
    // Kept to answer retransmitted requests: its bytes, not the response and the request text its headers pin.
    this.#releasedToTag = this.lastToTag;
    this.#last = encodedCopy(res, wire);
    if (!this.isInvite) {
      this.#timers.set('J', t.J, () => this.terminate());
      return;
    }
    if (!this.#reliable) this.#scheduleG(t.G);
    this.#timers.set('H', t.H, () => {
      this.#ctx.stat('timeouts');
      this.terminate();
      this.#ctx.ackTimeout(this);
    });
  }

  #scheduleG(interval: number): void {
    this.#timers.set('G', interval, () => {
      if (this.#currentState !== 'completed' || !this.#last) return;
      this.#ctx.stat('retransmissions');
      this.#ctx.send(this.#last, this.responseDest);
      this.#scheduleG(Math.min(interval * 2, this.#ctx.timers.T2));
    });
  }

  /** The same request arrived again (§17.2.1, §17.2.2): resend the last response, if any. */
  receiveRetransmission(): void {
    this.#ctx.stat('absorbed');
    const s = this.#currentState;
    if (s !== 'proceeding' && s !== 'completed') return; // Trying, Confirmed, Accepted: absorb silently
    if (this.#last) this.#ctx.send(this.#last, this.responseDest);
    else if (this.isInvite && this.#request) this.respond(buildResponse(this.#request, 100)); // impatient peer: now
  }

  /**
   * An ACK matched this INVITE transaction. Returns true when it was absorbed here (ACK for our 300-699), false when
   * it belongs to the TU (an ACK for a 2xx that reused the INVITE branch).
   */
  receiveAck(): boolean {
    const s = this.#currentState;
    if (s === 'accepted') return false;
    if (s === 'completed') {
      this.#currentState = 'confirmed';
      this.#releaseLast(); // Confirmed absorbs ACK retransmissions: the response is never sent again
      this.#timers.clear('G');
      this.#timers.clear('H');
      if (this.#reliable) this.terminate();
      else this.#timers.set('I', this.#ctx.timers.I, () => this.terminate());
      return true;
    }
    this.#ctx.stat('absorbed');
    return true;
  }

  #releaseLast(): void {
    this.#releasedToTag = this.lastToTag;
    this.#last = undefined;
  }

  /** Drop the transaction without telling the TU. */
  terminate(): void {
    if (this.#currentState === 'terminated') return;
    this.#currentState = 'terminated';
    this.#timers.clearAll();
    this.#request = undefined;
    this.#last = undefined;
    this.#ctx.terminated(this.id, this);
  }
}
