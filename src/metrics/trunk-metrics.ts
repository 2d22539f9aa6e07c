/**
 * Per Telnyx trunk series: INVITEs sent, INVITEs its CPS or concurrency limit refused before sending, and (at
 * scrape time) calls up and INVITEs waiting for a slot. Trunk names come from the gateway config (validated there),
 * so the label set is small and fixed.
 */
import { Counter, Gauge, type Registry } from 'prom-client';

const PREFIX = 'kallglot_gateway_';

/** What one trunk is doing now (the calls module's TrunkUsage has this shape). */
export interface TrunkUsageView {
  trunk: string;
  active: number;
  waiting: number;
}

export class TrunkMetrics {
  readonly #invites: Counter<'trunk'>;
  readonly #refusals: Counter<'trunk' | 'limit'>;

  constructor(registers: Registry[], usage: () => readonly TrunkUsageView[]) {
    this.#invites = new Counter({
      name: `${PREFIX}trunk_invites_total`,
      help: 'INVITEs sent on each Telnyx trunk (translated, fallback and redirected alike), after its limits let them',
      labelNames: ['trunk'],
      registers,
    });
    this.#refusals = new Counter({
      name: `${PREFIX}trunk_limit_refusals_total`,
      help: 'INVITEs not sent because the Telnyx trunk was at its limit (cps or concurrency): the caller got 503',
      labelNames: ['trunk', 'limit'],
      registers,
    });
    new Gauge({
      name: `${PREFIX}trunk_active_calls`,
      help: 'Calls on each Telnyx trunk now: INVITEs in progress and answered calls (what maxConcurrent limits)',
      labelNames: ['trunk'],
      registers,
      collect() {
        for (const u of usage()) this.set({ trunk: u.trunk }, u.active);
      },
    });
    new Gauge({
      name: `${PREFIX}trunk_waiting_invites`,
      help: 'INVITEs waiting (at most 1 s) for a slot on each Telnyx trunk',
      labelNames: ['trunk'],
      registers,
      collect() {
        for (const u of usage()) this.set({ trunk: u.trunk }, u.waiting);
      },
    });
    // Known label values start at 0: increase() over a series that appears at 1 would miss its first event.
    for (const { trunk } of usage()) {
      this.#invites.inc({ trunk }, 0);
      for (const limit of ['cps', 'concurrency']) this.#refusals.inc({ trunk, limit }, 0);
    }
  }

  invite(trunk: string): void {
    this.#invites.inc({ trunk });
  }

  refused(trunk: string, limit: 'cps' | 'concurrency'): void {
    this.#refusals.inc({ trunk, limit });
  }
}
