/**
 * `sip_messages_total{direction, method}`: every SIP message in and out, a dozen per call. prom-client's inc() with
 * labels builds a label hash string, checks every label name and looks the series up in a dictionary, each time;
 * here a message costs one Map increment, and the counter takes the totals when Prometheus scrapes (collect). Same
 * name, labels and values: the series only ever grow, as a counter's must.
 */
import { Counter, type Registry } from 'prom-client';

const SIP_METHODS = new Set([
  'INVITE',
  'ACK',
  'BYE',
  'CANCEL',
  'OPTIONS',
  'REGISTER',
  'PRACK',
  'UPDATE',
  'INFO',
  'REFER',
  'NOTIFY',
  'SUBSCRIBE',
  'MESSAGE',
]);

/** A status (100–699) as a number, a known method, or `other`: at most 614 keys whatever the input. */
function sipKey(v: string | number): string | number {
  if (typeof v === 'number') return Number.isInteger(v) && v >= 100 && v <= 699 ? v : 'other';
  if (SIP_METHODS.has(v)) return v; // the engines' own spelling: no case folding on the common path
  if (/^\d{3}$/.test(v)) return sipKey(Number(v));
  const upper = v.toUpperCase();
  return SIP_METHODS.has(upper) ? upper : 'other';
}

export class SipMessageCounter {
  readonly #in = new Map<string | number, number>();
  readonly #out = new Map<string | number, number>();

  constructor(registers: Registry[], prefix: string) {
    const counts = { in: this.#in, out: this.#out };
    new Counter({
      name: `${prefix}sip_messages_total`,
      help: 'SIP messages by direction and method or status',
      labelNames: ['direction', 'method'],
      registers,
      collect() {
        this.reset();
        for (const direction of ['in', 'out'] as const) {
          for (const [key, n] of counts[direction]) this.inc({ direction, method: String(key) }, n);
        }
      },
    });
  }

  /** methodOrStatus: a request method (INVITE…) or a response status (486); unknown methods count as `other`. */
  count(direction: 'in' | 'out', methodOrStatus: string | number): void {
    const counts = direction === 'in' ? this.#in : this.#out;
    const key = sipKey(methodOrStatus);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
}
