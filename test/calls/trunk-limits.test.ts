/**
 * The per-trunk limits with fake timers: no more than maxCallsPerSecond INVITEs in any window, waiting in line for
 * at most maxWaitMs (refused at once when no token can come in time), concurrency held until release, one trunk
 * never slowed by another.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { TrunkLimiter, type TrunkTicket, TrunkLimits } from '../../src/calls/trunk-limits.ts';
import type { TelnyxTrunk } from '../../src/config/trunks.ts';

function trunk(name: string, maxCallsPerSecond: number, maxConcurrent = 0): TelnyxTrunk {
  return {
    name,
    sipDomain: 'sip.telnyx.com',
    outboundProxy: '',
    sipTransport: 'udp',
    sipUsername: '',
    sipPassword: '',
    translatedUriTemplate: 'sip:{session_id}@{domain}',
    directUriTemplate: 'sip:{called}@{domain}',
    techPrefix: '',
    maxCallsPerSecond,
    maxConcurrent,
  };
}

/** The promise's value once it has one, else 'pending' (only microtasks run: fake timers stay where they are). */
async function peek(p: Promise<TrunkTicket>): Promise<TrunkTicket | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setImmediate(() => r('pending')))]);
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(1_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('TrunkLimiter: calls per second', () => {
  it('lets the limit through at once, then each waiter when a token comes back a window after its use', async () => {
    const l = new TrunkLimiter(trunk('t', 2), 1000, 1000);
    const sentAt: number[] = [];
    const take = async () => {
      const t = await l.acquire();
      if (t.granted) sentAt.push(Date.now());
      return t;
    };
    const a = await take();
    vi.advanceTimersByTime(100);
    const b = await take();
    vi.advanceTimersByTime(100);
    const c = take(); // needs a's token: back at 1000
    const d = take(); // needs b's token: back at 1100
    expect([a.granted, b.granted]).toEqual([true, true]);
    expect(await peek(c)).toBe('pending');
    vi.advanceTimersByTime(799);
    expect(await peek(c)).toBe('pending');
    vi.advanceTimersByTime(1);
    expect(await c).toMatchObject({ granted: true, waitedMs: 800 });
    expect(await peek(d)).toBe('pending');
    vi.advanceTimersByTime(100);
    expect(await d).toMatchObject({ granted: true, waitedMs: 900 });
    expect(sentAt.map((t) => t - 1_000_000)).toEqual([0, 100, 1000, 1100]);
    // The property Telnyx counts: no window of 1000 ms holds more than 2 sends.
    for (let i = 2; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 2]!).toBeGreaterThanOrEqual(1000);
  });

  it('refuses at once the INVITE no token could reach within maxWaitMs, and waits for one that can', async () => {
    const l = new TrunkLimiter(trunk('t', 2), 1000, 1000);
    await l.acquire();
    await l.acquire();
    vi.advanceTimersByTime(300);
    const waiting = [l.acquire(), l.acquire()]; // tokens back at 1000: in 700 ms
    // A fifth would need a token used by the third or fourth: back at 1700 at the earliest, 1400 ms away.
    expect(await l.acquire()).toEqual({ granted: false, limit: 'cps', waitedMs: 0 });
    vi.advanceTimersByTime(700);
    expect((await Promise.all(waiting)).map((t) => t.granted)).toEqual([true, true]);
  });

  it('with maxWaitMs 0 refuses at once, and 0 calls per second means no limit', async () => {
    const strict = new TrunkLimiter(trunk('t', 1), 1000, 0);
    expect((await strict.acquire()).granted).toBe(true);
    expect(await strict.acquire()).toEqual({ granted: false, limit: 'cps', waitedMs: 0 });
    const open = new TrunkLimiter(trunk('u', 0), 1000, 0);
    const all = await Promise.all(Array.from({ length: 100 }, () => open.acquire()));
    expect(all.every((t) => t.granted)).toBe(true);
  });
});

describe('TrunkLimiter: concurrency', () => {
  it('holds a slot until release (idempotent), lets a waiter in on release, refuses after maxWaitMs', async () => {
    const l = new TrunkLimiter(trunk('t', 0, 2), 1000, 1000);
    const a = await l.acquire();
    const b = await l.acquire();
    const c = l.acquire();
    expect(l.usage()).toEqual({ trunk: 't', active: 2, waiting: 1, recent: 0 });
    vi.advanceTimersByTime(400);
    if (!a.granted) throw new Error('a refused');
    a.permit.release();
    a.permit.release(); // twice: still one slot freed
    expect(await c).toMatchObject({ granted: true, waitedMs: 400 });
    expect(l.usage().active).toBe(2);
    const d = l.acquire();
    vi.advanceTimersByTime(1000);
    expect(await d).toEqual({ granted: false, limit: 'concurrency', waitedMs: 1000 });
    if (!b.granted) throw new Error('b refused');
    b.permit.release();
    expect(l.usage()).toEqual({ trunk: 't', active: 1, waiting: 0, recent: 0 });
  });

  it('a failed leg then its fallback: each INVITE takes a slot and a token, the failed one gives its slot back', async () => {
    const l = new TrunkLimiter(trunk('t', 20, 1), 1000, 1000);
    const translated = await l.acquire();
    if (!translated.granted) throw new Error('refused');
    translated.permit.release(); // the translated leg failed (503): the call falls back
    const fallback = await l.acquire();
    expect(fallback.granted).toBe(true);
    expect(l.usage()).toEqual({ trunk: 't', active: 1, waiting: 0, recent: 2 });
  });
});

describe('TrunkLimits', () => {
  it('keeps each trunk to its own limits, counts grants and refusals, and knows its trunks by name', async () => {
    const events: string[] = [];
    const limits = new TrunkLimits({
      trunks: [trunk('default', 1), trunk('eu', 2)],
      maxWaitMs: 0,
      onGranted: (t) => events.push(`sent ${t}`),
      onRefused: (t, limit) => events.push(`refused ${t} ${limit}`),
    });
    expect((await limits.acquire('default')).granted).toBe(true);
    expect((await limits.acquire('default')).granted).toBe(false);
    expect((await limits.acquire('eu')).granted).toBe(true);
    expect((await limits.acquire('eu')).granted).toBe(true);
    expect(events).toEqual(['sent default', 'refused default cps', 'sent eu', 'sent eu']);
    expect(limits.trunk('eu').maxCallsPerSecond).toBe(2);
    expect(() => limits.trunk('asia')).toThrow('unknown Telnyx trunk "asia" (known: default, eu)');
    expect(limits.usage().map((u) => [u.trunk, u.recent])).toEqual([
      ['default', 1],
      ['eu', 2],
    ]);
  });

  it('close() refuses whoever still waits', async () => {
    const limits = new TrunkLimits({ trunks: [trunk('default', 1)] });
    await limits.acquire('default');
    const waiting = limits.acquire('default');
    limits.close();
    expect(await waiting).toMatchObject({ granted: false, limit: 'cps' });
  });
});
