/**
 * Registry retention: which rows a prune deletes (only ended calls past the retention, their events and stray old
 * events) and which it never touches (active calls, calls with a pending session end, pending_session_ends); passes
 * in batches that let the event loop run; off at 0 days; periodic until stopped.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { CallRegistry } from '../../src/registry/call-registry.ts';
import { RegistryRetention, type RetentionOptions } from '../../src/registry/retention.ts';

const DAY = 86_400_000;
const NOW = Date.UTC(2026, 5, 1);

const dirs: string[] = [];
const open: Array<{ close(): void }> = [];
function registry(): CallRegistry {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-ret-'));
  dirs.push(d);
  const reg = new CallRegistry(d);
  open.push(reg);
  return reg;
}
afterEach(() => {
  for (const r of open.splice(0)) r.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function logs(): { lines: Array<Record<string, unknown>>; logger: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, logger: createLogger('debug', sink) };
}

/** A call that started `startedDaysAgo` and, unless `endedDaysAgo` is undefined, ended then, with two events. */
function call(reg: CallRegistry, id: string, startedDaysAgo: number, endedDaysAgo?: number, session?: string): void {
  reg.callStarted({ callId: id }, NOW - startedDaysAgo * DAY);
  if (session) reg.update(id, { sessionId: session });
  reg.addEvent(id, 'call.initiated', { n: 1 }, `${id}:1`, NOW - startedDaysAgo * DAY);
  if (endedDaysAgo === undefined) return;
  reg.addEvent(id, 'call.hangup', null, `${id}:2`, NOW - endedDaysAgo * DAY);
  reg.callEnded(id, { reason: 'bye_from_pbx' }, NOW - endedDaysAgo * DAY);
}

function retention(reg: CallRegistry, o: Partial<RetentionOptions> = {}): RegistryRetention {
  const r = new RegistryRetention({ registry: reg, retentionDays: 30, logger: logs().logger, now: () => NOW, ...o });
  open.unshift({ close: () => r.stop() }); // stopped before the registries close
  return r;
}

describe('CallRegistry.pruneEnded', () => {
  it('deletes ended calls past the cutoff with their events, and stray old events; nothing else', async () => {
    const reg = registry();
    call(reg, 'old-ended', 40, 39);
    call(reg, 'recent-ended', 40, 5);
    call(reg, 'old-active', 400); // a call the gateway still thinks is up is never pruned, however old
    call(reg, 'pending-by-session', 50, 45, 'sess_p');
    reg.addPendingEnd('sess_p', undefined, 'error', 'kallglot down');
    call(reg, 'pending-by-call', 50, 45, 'sess_q');
    reg.addPendingEnd('sess_other', 'pending-by-call', 'error');
    reg.addEvent('no-such-call-old', 'texml.completed', null, 'stray-old', NOW - 60 * DAY);
    reg.addEvent('no-such-call-new', 'texml.completed', null, 'stray-new', NOW - DAY);
    await reg.commitNow();

    expect(reg.pruneEnded(NOW - 30 * DAY, 100)).toEqual({ calls: 1, events: 3 });
    expect(reg.get('old-ended')).toBeUndefined();
    expect(reg.events('old-ended')).toEqual([]);
    expect(reg.events('no-such-call-old')).toEqual([]);
    for (const id of ['recent-ended', 'old-active', 'pending-by-session', 'pending-by-call']) {
      expect(reg.get(id), id).toBeDefined();
      expect(reg.events(id).length, id).toBeGreaterThan(0);
    }
    expect(reg.events('no-such-call-new')).toHaveLength(1);
    expect(new Set(reg.pendingEnds().map((p) => p.session_id))).toEqual(new Set(['sess_other', 'sess_p']));
    expect(reg.active().map((c) => c.call_id)).toEqual(['old-active']);
    expect(reg.pruneEnded(NOW - 30 * DAY, 100)).toEqual({ calls: 0, events: 0 });

    // Once the session end is confirmed the call is an ordinary ended call again.
    reg.sessionEndConfirmed('sess_p', 'ended');
    expect(reg.pruneEnded(NOW - 30 * DAY, 100)).toEqual({ calls: 1, events: 2 });
    expect(reg.get('pending-by-session')).toBeUndefined();
  });

  it('deletes at most `limit` calls a batch, oldest first, and commits each batch', async () => {
    const reg = registry();
    for (let i = 0; i < 5; i++) call(reg, `c${i}`, 100, 90 - i);
    await reg.commitNow();
    expect(reg.pruneEnded(NOW - 30 * DAY, 2).calls).toBe(2);
    expect(['c0', 'c1'].map((id) => reg.get(id))).toEqual([undefined, undefined]);
    expect(reg.get('c2')).toBeDefined();
    reg.close();
    expect(reg.pruneEnded(NOW - 30 * DAY, 2)).toEqual({ calls: 0, events: 0 }); // closed: a no-op, not a throw
  });
});

describe('RegistryRetention', () => {
  it('prunes in batches with the event loop free between them, logs and counts the rows', async () => {
    const reg = registry();
    for (let i = 0; i < 250; i++) call(reg, `old${i}`, 60, 40);
    call(reg, 'kept', 10, 9);
    await reg.commitNow();
    const { lines, logger } = logs();
    const batches: number[] = [];
    let ticks = 0;
    const spy = {
      pruneEnded: (cutoff: number, limit: number) => {
        batches.push(ticks);
        return reg.pruneEnded(cutoff, limit);
      },
    };
    const pruned: unknown[] = [];
    const r = retention(reg, { registry: spy, logger, batchSize: 100, onPruned: (c) => pruned.push(c) });
    // Another task of the event loop, one step per turn: it advances between two batches only if the pass yields.
    let passing = true;
    const tick = (): void => {
      ticks++;
      if (passing) setImmediate(tick);
    };
    setImmediate(tick);
    const counts = await r.runOnce();
    passing = false;

    expect(counts).toEqual({ calls: 250, events: 500 });
    expect(r.totals).toEqual({ calls: 250, events: 500 });
    expect(pruned).toEqual([{ calls: 250, events: 500 }]);
    expect(batches.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < batches.length; i++) expect(batches[i]).toBeGreaterThan(batches[i - 1]!);
    expect(reg.get('kept')).toBeDefined();
    expect(lines.find((l) => l.msg === 'registry retention: pruned ended calls')).toMatchObject({
      level: 'info',
      prunedCalls: 250,
      prunedEvents: 500,
      retentionDays: 30,
      endedBefore: new Date(NOW - 30 * DAY).toISOString(),
    });
    expect(await r.runOnce()).toEqual({ calls: 0, events: 0 });
  });

  it('REGISTRY_RETENTION_DAYS=0 keeps everything and says so', async () => {
    const reg = registry();
    call(reg, 'ancient', 5000, 4999);
    await reg.commitNow();
    const { lines, logger } = logs();
    const r = retention(reg, { retentionDays: 0, logger });
    r.start();
    expect(await r.runOnce()).toEqual({ calls: 0, events: 0 });
    expect(reg.get('ancient')).toBeDefined();
    expect(lines.map((l) => l.msg)).toContain(
      'registry retention is off (REGISTRY_RETENTION_DAYS=0): ended calls are kept forever',
    );
  });

  it('runs at start and then every interval, until stopped', async () => {
    const reg = registry();
    call(reg, 'first', 60, 50);
    await reg.commitNow();
    let now = NOW;
    const passes: number[] = [];
    const r = retention(reg, {
      intervalMs: 20,
      now: () => now,
      onPruned: (c) => passes.push(c.calls),
    });
    r.start();
    await waitUntil(() => reg.get('first') === undefined);
    call(reg, 'second', 20, 10); // not old enough yet
    await reg.commitNow();
    now += 25 * DAY; // ... and now it is: the next periodic pass takes it
    await waitUntil(() => reg.get('second') === undefined);
    expect(passes).toEqual([1, 1]);
    r.stop();
    call(reg, 'after-stop', 100, 90);
    await reg.commitNow();
    await new Promise((res) => setTimeout(res, 100));
    expect(reg.get('after-stop')).toBeDefined();
  });

  it('a failing prune is logged and the pass ends; the next pass tries again', async () => {
    const { lines, logger } = logs();
    let fail = true;
    const r = new RegistryRetention({
      registry: {
        pruneEnded: () => {
          if (fail) throw new Error('disk I/O error');
          return { calls: 1, events: 0 };
        },
      },
      retentionDays: 30,
      logger,
    });
    expect(await r.runOnce()).toEqual({ calls: 0, events: 0 });
    expect(lines.find((l) => l.level === 'error')).toMatchObject({
      msg: 'registry retention failed; retrying at the next pass',
      err: { message: 'disk I/O error' },
    });
    fail = false;
    expect(await r.runOnce()).toEqual({ calls: 1, events: 0 });
  });
});

async function waitUntil(pred: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((res) => setTimeout(res, 5));
  }
}
