/**
 * SIP message counters of the drachtio adapter. drachtio-server keeps its own (its Prometheus endpoint), but the
 * gateway's stats and /metrics should not read 0 under SIP_ENGINE=drachtio, so the adapter counts what crosses its
 * connection to drachtio-server: the requests and responses it is handed and sends, including the ones drachtio-srf
 * sends for it (the 200 to a BYE, the ACK of a 2xx, the PRACK of a reliable provisional). What drachtio-server
 * handles alone (100 Trying, retransmissions, ACKs of failures, the 200 to a CANCEL) never reaches the adapter, and
 * parse errors are drachtio-server's too.
 */
import type { Logger } from '../../logger.ts';

export interface SipTrafficSink {
  sipMessage(direction: 'in' | 'out', methodOrStatus: string | number): void;
}

export class SipTraffic {
  messagesIn = 0;
  messagesOut = 0;
  readonly #sink: SipTrafficSink | undefined;

  constructor(sink?: SipTrafficSink) {
    this.#sink = sink;
  }

  in(methodOrStatus: string | number): void {
    this.messagesIn++;
    this.#sink?.sipMessage('in', methodOrStatus);
  }

  out(methodOrStatus: string | number): void {
    this.messagesOut++;
    this.#sink?.sipMessage('out', methodOrStatus);
  }
}

/** What every part of the adapter needs: where to log and what to count. */
export interface AdapterContext {
  logger: Logger;
  traffic: SipTraffic;
}
