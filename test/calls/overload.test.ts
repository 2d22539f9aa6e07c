/**
 * Overload control pieces, with an injected clock and hand-driven timer (no real waiting, nothing timed): the
 * event-loop lag admission reads, admission's refusals on lag and on in-flight setups, the aggregated refusal log,
 * and the CallManager's in-flight bookkeeping (a call stops counting once answered or failed).
 */
import { describe, expect, it } from 'vitest';
import { Admission, type OverloadLimits } from '../../src/calls/admission.ts';
import { EventLoopLag, RefusalLog } from '../../src/calls/overload.ts';
import { harness } from './call-harness.ts';
import { settle } from './fake-engine.ts';
import { KallglotError } from '../../src/kallglot/errors.ts';

/** A clock and a single pending timer the test fires by hand. */
function fakeTimer() {
  let now = 1000;
  let pending: { fn: () => void; at: number } | undefined;
  return {
    now: () => now,
    schedule: (fn: () => void, ms: number) => {
      const entry = { fn, at: now + ms };
      pending = entry;
      return { cancel: () => void (pending === entry && (pending = undefined)) };
    },
    advance(ms: number) {
      now += ms;
    },
    fire() {
      const p = pending;
      pending = undefined;
      p?.fn();
    },
    get armed() {
      return pending !== undefined;
    },
  };
}

describe('EventLoopLag', () => {
  /** A monitor on the fake timer whose loop is busy `busy` of each interval unless a test says otherwise. */
  function monitor(t: ReturnType<typeof fakeTimer>) {
    const times = { active: 0, idle: 0 };
    const lag = new EventLoopLag({ intervalMs: 20, now: t.now, schedule: t.schedule, loopTimes: () => ({ ...times }) });
    /** One interval of `ms` with the loop busy for `activeMs` of it, ending with the check firing `lateMs` late. */
    const interval = (activeMs: number, lateMs = 0) => {
      times.active += activeMs + lateMs;
      times.idle += 20 - activeMs;
      t.advance(20 + lateMs);
      t.fire();
    };
    return { lag, interval };
  }

  it('smooths the lateness: one pause moves it by 30%, a loop that stays late reaches its lateness', () => {
    const t = fakeTimer();
    const { lag, interval } = monitor(t);
    expect(lag.lagMs()).toBe(0); // not started
    lag.start();
    interval(5);
    expect(lag.lagMs()).toBe(0); // on time
    interval(5, 100); // one 100 ms pause (a major GC, a SQLite checkpoint)
    expect(lag.lagMs()).toBeCloseTo(30);
    interval(5);
    expect(lag.lagMs()).toBeCloseTo(21); // and it fades
    for (let i = 0; i < 30; i++) interval(20, 80); // late by 80 ms every time
    expect(lag.lagMs()).toBeGreaterThan(79);
  });

  it('measures the share of time the loop is busy, smoothed over many intervals', () => {
    const t = fakeTimer();
    const { lag, interval } = monitor(t);
    lag.start();
    for (let i = 0; i < 100; i++) interval(10); // busy half of the time
    expect(lag.utilization()).toBeCloseTo(0.5, 2);
    interval(20); // one busy interval moves it by 8% of the way
    expect(lag.utilization()).toBeCloseTo(0.54, 2);
    for (let i = 0; i < 100; i++) interval(20);
    expect(lag.utilization()).toBeGreaterThan(0.99);
  });

  it('stops: no timer left and nothing reported', () => {
    const t = fakeTimer();
    const { lag, interval } = monitor(t);
    lag.start();
    for (let i = 0; i < 10; i++) interval(20, 100);
    lag.stop();
    expect(t.armed).toBe(false);
    expect(lag.lagMs()).toBe(0);
    expect(lag.utilization()).toBe(0);
  });
});

function overloadAdmission(o: Partial<OverloadLimits>): Admission {
  return new Admission({
    allowedSources: ['127.0.0.0/8'],
    maxConcurrent: 10,
    maxCallsPerSecond: 0,
    overload: { maxLagMs: 50, lagMs: () => 0, maxUtilization: 0.9, utilization: () => 0, maxInflightSetups: 0, ...o },
  });
}

describe('Admission: overload', () => {
  it('refuses with 503 and Retry-After 1 while the event loop lags more than the limit', () => {
    let lag = 0;
    const a = overloadAdmission({ lagMs: () => lag });
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    lag = 50;
    expect(a.admit('127.0.0.1').admitted).toBe(true); // at the limit, not above it
    lag = 51;
    expect(a.admit('127.0.0.1')).toEqual({
      admitted: false,
      status: 503,
      reason: 'Service Unavailable (overloaded)',
      retryAfterSec: 1,
      why: 'event_loop_lag',
    });
    expect(a.activeCalls).toBe(2); // a refusal takes no slot
    lag = 3;
    expect(a.admit('127.0.0.1').admitted).toBe(true);
  });

  it('refuses while the event loop is busy more than the limit', () => {
    let busy = 0.5;
    const a = overloadAdmission({ utilization: () => busy });
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    busy = 0.95;
    expect(a.admit('127.0.0.1')).toMatchObject({
      admitted: false,
      status: 503,
      retryAfterSec: 1,
      why: 'event_loop_busy',
    });
    busy = 0.85;
    expect(a.admit('127.0.0.1').admitted).toBe(true);
  });

  it('bounds the calls admitted but not yet answered or failed', () => {
    const a = overloadAdmission({ maxInflightSetups: 2 });
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.admit('127.0.0.1')).toMatchObject({ admitted: false, status: 503, why: 'inflight_setups' });
    a.setupEnded(); // one answered: it is still active, but no longer a setup in flight
    expect(a.inflightSetups).toBe(1);
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.activeCalls).toBe(3);
  });

  it('0 turns each check off; without overload limits nothing changes', () => {
    const off = overloadAdmission({ maxLagMs: 0, lagMs: () => 10_000, maxUtilization: 0, utilization: () => 1 });
    for (let i = 0; i < 5; i++) expect(off.admit('127.0.0.1').admitted).toBe(true);
    const none = new Admission({ allowedSources: ['127.0.0.0/8'], maxConcurrent: 0, maxCallsPerSecond: 0 });
    for (let i = 0; i < 5; i++) expect(none.admit('127.0.0.1').admitted).toBe(true);
    expect(none.inflightSetups).toBe(5);
  });

  it('draining and the source allowlist come first; the static limits after it', () => {
    const a = overloadAdmission({ lagMs: () => 500 });
    expect(a.admit('192.0.2.1')).toMatchObject({ status: 403, why: 'source_not_allowed' });
    a.startDraining();
    expect(a.admit('127.0.0.1')).toMatchObject({ why: 'draining' });
  });
});

describe('RefusalLog', () => {
  it('writes the first refusal at once, then one line per interval with the counts since the previous', () => {
    let now = 0;
    const lines: Array<Record<string, number>> = [];
    const log = new RefusalLog({ write: (c) => lines.push({ ...c }), everyMs: 10_000, now: () => now });
    log.note('event_loop_lag');
    expect(lines).toEqual([{ event_loop_lag: 1 }]);
    for (let i = 0; i < 5; i++) log.note('event_loop_lag');
    log.note('inflight_setups');
    expect(lines).toHaveLength(1);
    now = 10_000;
    log.note('event_loop_lag');
    expect(lines).toEqual([{ event_loop_lag: 1 }, { event_loop_lag: 6, inflight_setups: 1 }]);
  });
});

describe('CallManager: setups in flight', () => {
  it('counts a call from admission until it is answered', async () => {
    const h = harness();
    const pbx = await h.call();
    expect(h.admission.inflightSetups).toBe(1);
    await h.createOk('sess-1');
    h.invite(0).answer({ body: Buffer.from('v=0\r\n'), contentType: 'application/sdp' });
    await settle();
    pbx.ack();
    await settle();
    expect(h.admission.inflightSetups).toBe(0);
    expect(h.admission.activeCalls).toBe(1);
    pbx.dialog?.remoteBye();
    await settle();
    expect(h.admission.inflightSetups).toBe(0); // not released twice
    h.assertClean();
  });

  it('counts a call until it fails, and once only', async () => {
    const h = harness({ RATE_LIMIT_POLICY: 'busy' });
    await h.call();
    await h.call();
    expect(h.admission.inflightSetups).toBe(2);
    await h.createFails(new KallglotError('rate limited', { status: 429, code: 'rate_limit_exceeded' }), 0);
    expect(h.admission.inflightSetups).toBe(1);
    await h.createFails(new KallglotError('rate limited', { status: 429, code: 'rate_limit_exceeded' }), 1);
    expect(h.admission.inflightSetups).toBe(0);
    h.assertClean();
  });
});
