/**
 * sip_messages_total counted in plain Maps and handed to prom-client at scrape time: same series and values as
 * inc() per message, label values folded to a fixed set whatever the input.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { SipMessageCounter } from '../../src/metrics/sip-messages.ts';

function series(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const m = /^kallglot_gateway_sip_messages_total(\{[^}]*\}) (\d+)$/.exec(line);
    if (m?.[1] && m[2]) out[m[1]] = Number(m[2]);
  }
  return out;
}

describe('SipMessageCounter', () => {
  it('folds methods and statuses to a fixed label set, per direction', async () => {
    const registry = new Registry();
    const counter = new SipMessageCounter([registry], 'kallglot_gateway_');
    for (const m of ['INVITE', 'invite', 'Bye', 'BOGUS', '486', 'x'.repeat(500)]) counter.count('in', m);
    for (const s of [486, 1000, 99, 200.5, 200]) counter.count('out', s);
    expect(series(await registry.metrics())).toEqual({
      '{direction="in",method="INVITE"}': 2,
      '{direction="in",method="BYE"}': 1,
      '{direction="in",method="other"}': 2,
      '{direction="in",method="486"}': 1,
      '{direction="out",method="486"}': 1,
      '{direction="out",method="other"}': 3,
      '{direction="out",method="200"}': 1,
    });
  });

  it('only grows across scrapes, as a counter must (totals, not increments since the last scrape)', async () => {
    const registry = new Registry();
    const counter = new SipMessageCounter([registry], 'kallglot_gateway_');
    counter.count('in', 'INVITE');
    expect(series(await registry.metrics())).toEqual({ '{direction="in",method="INVITE"}': 1 });
    expect(series(await registry.metrics())).toEqual({ '{direction="in",method="INVITE"}': 1 });
    counter.count('in', 'INVITE');
    counter.count('out', 100);
    expect(series(await registry.metrics())).toEqual({
      '{direction="in",method="INVITE"}': 2,
      '{direction="out",method="100"}': 1,
    });
  });
});
