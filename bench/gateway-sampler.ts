/**
 * The gateway's memory at one moment, for the soak and the concurrent-calls run: its resident memory (/proc), the V8
 * heap in use (its /metrics) and what it holds (/healthz: active calls, SIP transactions).
 */
import { rssMiB } from './proc.ts';
import type { GatewayTarget } from './targets.ts';

export interface MemorySample {
  /** Seconds since the sampler started. */
  t: number;
  label?: string;
  rss: number;
  heap: number;
  activeCalls: number;
  transactions: number;
}

interface Health {
  activeCalls: number;
  sip: { activeTransactions?: number };
}

export function gatewaySampler(gw: GatewayTarget): {
  health(): Promise<Health>;
  take(label?: string): Promise<MemorySample>;
  rows: MemorySample[];
} {
  const t0 = performance.now();
  const rows: MemorySample[] = [];
  const health = async (): Promise<Health> =>
    (await fetch(`http://127.0.0.1:${gw.httpPort}/healthz`)).json() as Promise<Health>;
  return {
    health,
    rows,
    async take(label) {
      const h = await health();
      const row: MemorySample = {
        t: Math.round((performance.now() - t0) / 1000),
        ...(label !== undefined && { label }),
        rss: rssMiB([gw.pid]),
        heap: await gw.heapMiB(),
        activeCalls: h.activeCalls,
        transactions: h.sip.activeTransactions ?? Number.NaN,
      };
      rows.push(row);
      console.error(
        `  t=${row.t}s${label ? ` (${label})` : ''}: RSS ${row.rss.toFixed(0)} MiB heap ${row.heap.toFixed(0)} MiB ` +
          `calls ${row.activeCalls} transactions ${row.transactions}`,
      );
      return row;
    },
  };
}
