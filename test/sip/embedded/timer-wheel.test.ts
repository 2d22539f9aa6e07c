import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { SLOT_MS, TimerWheel } from '../../../src/sip/embedded/timer-wheel.ts';
import { TimerSet } from '../../../src/sip/embedded/timers.ts';

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe('TimerWheel', () => {
  it('fires on time for durations that are multiples of the slot, with one Node timer for all entries', () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    wheel.schedule(500, () => fired.push('a'));
    wheel.schedule(32_000, () => fired.push('b'));
    wheel.schedule(500, () => fired.push('c'));
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(499);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a', 'c']);
    vi.advanceTimersByTime(31_499);
    expect(fired).toEqual(['a', 'c']);
    vi.advanceTimersByTime(1);
    expect(fired).toEqual(['a', 'c', 'b']);
    expect(wheel.size).toBe(0);
  });

  it('rounds other durations up to the end of their slot: late by less than a slot, never early', () => {
    const wheel = new TimerWheel();
    vi.advanceTimersByTime(3); // the wheel counts slots from its first entry, wherever the clock is
    let firedAt = -1;
    const start = performance.now();
    wheel.schedule(1, () => undefined); // starts the wheel at `start`
    wheel.schedule(123, () => {
      firedAt = performance.now() - start;
    });
    vi.advanceTimersByTime(200);
    expect(firedAt).toBeGreaterThanOrEqual(123);
    expect(firedAt).toBeLessThan(123 + SLOT_MS);
  });

  it('cancels in O(1) without running the entry, and stops its Node timer once nothing is pending', () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    const a = wheel.schedule(100, () => fired.push('a'));
    const b = wheel.schedule(200, () => fired.push('b'));
    wheel.cancel(a);
    wheel.cancel(a); // twice is harmless
    expect(wheel.size).toBe(1);
    wheel.cancel(b);
    expect(wheel.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0); // an idle wheel does not keep the process alive
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual([]);
  });

  it('re-arms for an entry earlier than the armed one, and runs entries scheduled from a callback later', () => {
    const wheel = new TimerWheel();
    const fired: Array<[string, number]> = [];
    const t0 = performance.now();
    const at = (name: string) => () => fired.push([name, performance.now() - t0]);
    wheel.schedule(1000, at('late'));
    wheel.schedule(100, () => {
      at('early')();
      wheel.schedule(0, at('chained')); // never in the slot being run: the next one
    });
    vi.advanceTimersByTime(2000);
    expect(fired).toEqual([
      ['early', 100],
      ['chained', 110],
      ['late', 1000],
    ]);
  });

  it('lets a callback cancel a later entry of the same slot', () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    const entries: Array<ReturnType<TimerWheel['schedule']>> = [];
    wheel.schedule(50, () => {
      fired.push('first');
      const second = entries[0];
      if (second) wheel.cancel(second);
    });
    entries.push(wheel.schedule(50, () => fired.push('second')));
    wheel.schedule(50, () => fired.push('third'));
    vi.advanceTimersByTime(50);
    expect(fired).toEqual(['first', 'third']);
    expect(wheel.size).toBe(0);
  });

  it('runs the other entries when one throws, then surfaces the error', () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    wheel.schedule(10, () => {
      throw new Error('boom');
    });
    wheel.schedule(10, () => fired.push('after'));
    wheel.schedule(500, () => fired.push('later'));
    expect(() => vi.advanceTimersByTime(10)).toThrow('boom');
    expect(fired).toEqual(['after']);
    vi.advanceTimersByTime(490);
    expect(fired).toEqual(['after', 'later']);
  });

  it('clear() drops everything', () => {
    const wheel = new TimerWheel();
    const fired: string[] = [];
    wheel.schedule(10, () => fired.push('a'));
    wheel.schedule(5000, () => fired.push('b'));
    wheel.clear();
    expect(wheel.size).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(fired).toEqual([]);
  });

  it('keeps firing in order when the clock the wheel reads does not move (setTimeout faked alone)', () => {
    vi.useRealTimers();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const wheel = new TimerWheel();
    const fired: string[] = [];
    wheel.schedule(500, () => {
      fired.push('500');
      wheel.schedule(500, () => fired.push('1000'));
    });
    wheel.schedule(2000, () => fired.push('2000'));
    // The real clock moves a little between readings: each timer may be up to one slot late.
    vi.advanceTimersByTime(500 + SLOT_MS);
    expect(fired).toEqual(['500']);
    vi.advanceTimersByTime(500 + SLOT_MS);
    expect(fired).toEqual(['500', '1000']);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['500', '1000', '2000']);
  });
});

describe('TimerSet on a wheel', () => {
  it('replaces a pending timer of the same name and clears all on termination', () => {
    const wheel = new TimerWheel();
    const timers = new TimerSet(wheel);
    const fired: string[] = [];
    timers.set('retransmit', 500, () => fired.push('first'));
    timers.set('retransmit', 1000, () => fired.push('second'));
    timers.set('timeout', 32_000, () => fired.push('timeout'));
    expect(timers.size).toBe(2);
    expect(wheel.size).toBe(2);
    vi.advanceTimersByTime(1000);
    expect(fired).toEqual(['second']);
    expect(timers.has('retransmit')).toBe(false);
    timers.clearAll();
    expect(wheel.size).toBe(0);
    vi.advanceTimersByTime(40_000);
    expect(fired).toEqual(['second']);
  });
});
