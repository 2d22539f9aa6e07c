/**
 * CreateResolver with a store (the call registry's unresolved_creates): a create of unknown outcome is recorded when
 * its resolution starts and forgotten once settled, kept when it cannot be resolved here (dropped, stop), and fed
 * back by resumeUnresolved (start-up recovery, the takeover of a dead instance). A fake store records the writes;
 * the crash itself, with the real SQLite registry, is in test/registry/recovery.test.ts.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { KallglotError } from '../../src/kallglot/errors.ts';
import type { CreateSessionInput, EndReason, KallglotSession } from '../../src/kallglot/types.ts';
import {
  CreateResolver,
  type CreateResolverOptions,
  type ResolutionOutcome,
  type StoredCreate,
  type UnresolvedCreateStore,
} from '../../src/sessions/create-resolver.ts';

const logger = pino({ level: 'silent' });

function unknownOutcome(code = 'deadline_exceeded'): KallglotError {
  const e = new KallglotError('lost', { code });
  e.outcomeUnknown = true;
  return e;
}

const session = (id: string, status = 'created'): KallglotSession => ({ id, status, mode: 'x', raw: {} });

function input(callId = 'a@pbx'): CreateSessionInput {
  return {
    mode: 'bidirectional_translation',
    sourceLanguage: 'de',
    targetLanguage: 'en',
    routing: { type: 'sip', direction: 'outbound' },
    sipUri: 'sip:+4930123456@sip.telnyx.com',
    metadata: { sip_call_id: callId },
    idempotencyKey: `sip-${callId}`,
  };
}

/** The registry's table, in memory: rows by key, and every write in order. */
function fakeStore(rows: StoredCreate[] = []) {
  const table = new Map(rows.map((r) => [r.idempotency_key, { ...r }]));
  const writes: string[] = [];
  const store: UnresolvedCreateStore = {
    createUnresolved: (c) => {
      writes.push(`insert ${c.idempotencyKey}`);
      if (table.has(c.idempotencyKey)) return false;
      table.set(c.idempotencyKey, {
        idempotency_key: c.idempotencyKey,
        call_id: c.callId ?? null,
        request: c.request,
        code: c.code,
        failed_at: c.failedAt,
        attempts: 0,
      });
      return true;
    },
    createAttempted: (key) => {
      writes.push(`attempt ${key}`);
      const row = table.get(key);
      if (row) row.attempts += 1;
    },
    createSettled: (key) => {
      writes.push(`settle ${key}`);
      table.delete(key);
    },
    // A shared registry answers later.
    unresolvedCreates: async () => [...table.values()],
  };
  return { store, table, writes };
}

type Reply = KallglotSession | KallglotError | Promise<KallglotSession>;

function rig(script: Reply[], opts: CreateResolverOptions = {}, rows: StoredCreate[] = []) {
  const creates: CreateSessionInput[] = [];
  const ends: Array<{ id: string; reason: EndReason; detail?: string; callId?: string }> = [];
  const outcomes: ResolutionOutcome[] = [];
  const { store, table, writes } = fakeStore(rows);
  let n = 0;
  const api = {
    createSession: async (i: CreateSessionInput) => {
      creates.push(i);
      const reply = script[Math.min(n++, script.length - 1)]!;
      if (reply instanceof KallglotError) throw reply;
      return reply;
    },
    getSession: async (id: string) => session(id),
  };
  const ender = {
    end: (id: string, reason: EndReason, detail?: string, callId?: string) => {
      writes.push(`end ${id}`);
      ends.push({ id, reason, detail, callId });
    },
  };
  const resolver = new CreateResolver(api, ender, logger, {
    firstDelayMs: 100,
    maxDelayMs: 1000,
    giveUpAfterMs: 10_000,
    onResolved: (o) => outcomes.push(o),
    store,
    ...opts,
  });
  return { resolver, creates, ends, outcomes, table, writes };
}

function storedRow(callId: string, over: Partial<StoredCreate> = {}): StoredCreate {
  return {
    idempotency_key: `sip-${callId}`,
    call_id: callId,
    request: JSON.stringify(input(callId)),
    code: 'http_504',
    failed_at: Date.now() - 5000,
    attempts: 3,
    ...over,
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CreateResolver with a store: the row of a resolution', () => {
  it('is written when the resolution starts (the request, no secret) and deleted after its session is ended', async () => {
    const r = rig([unknownOutcome(), session('sess_late')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    const row = r.table.get('sip-a@pbx');
    expect(row).toMatchObject({ call_id: 'a@pbx', code: 'deadline_exceeded', attempts: 0 });
    expect(JSON.parse(row!.request)).toEqual(input());
    expect(row!.request).not.toMatch(/sk_|api_?key|authorization/i);
    await vi.advanceTimersByTimeAsync(100);
    expect(r.ends).toEqual([{ id: 'sess_late', reason: 'error', detail: 'create_deadline_exceeded', callId: 'a@pbx' }]);
    // The end is asked for (and persisted by the ender) before the row goes.
    expect(r.writes).toEqual(['insert sip-a@pbx', 'attempt sip-a@pbx', 'end sess_late', 'settle sip-a@pbx']);
    expect(r.table.size).toBe(0);
  });

  it.each([
    ['none', [unknownOutcome(), new KallglotError('no', { status: 422, code: 'validation_failed' })]],
    ['gave_up', [unknownOutcome()]],
  ] as const)('is deleted when the resolution ends as %s', async (outcome, script) => {
    const r = rig([...script]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(20_000);
    expect(r.outcomes).toEqual([outcome]);
    expect(r.table.size).toBe(0);
    expect(r.writes.at(-1)).toBe('settle sip-a@pbx');
  });

  it('is deleted when a later create of the same key holds the session', async () => {
    const r = rig([unknownOutcome(), session('sess_1')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await expect(r.resolver.createSession(input())).resolves.toMatchObject({ id: 'sess_1' });
    expect(r.outcomes).toEqual(['claimed']);
    expect(r.table.size).toBe(0);
  });

  it('is kept when the resolution is dropped (too many pending) or left at stop(): the next start resolves it', async () => {
    const r = rig([unknownOutcome(), unknownOutcome(), new Promise<KallglotSession>(() => {})], { maxPending: 1 });
    await expect(r.resolver.createSession(input('a'))).rejects.toThrow();
    await expect(r.resolver.createSession(input('b'))).rejects.toThrow();
    expect(r.outcomes).toEqual(['dropped']);
    r.resolver.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect([...r.table.keys()]).toEqual(['sip-a', 'sip-b']);
    expect(r.writes.filter((w) => w.startsWith('settle'))).toEqual([]);
  });

  it('a successful create writes nothing (the call path pays for the store only when a create failed)', async () => {
    const r = rig([session('sess_1')]);
    await r.resolver.createSession(input());
    expect(r.writes).toEqual([]);
  });

  it('a store that throws (closed registry) never fails the call path: the create error still reaches its caller', async () => {
    const broken = new CreateResolver(
      { createSession: async () => Promise.reject(unknownOutcome()), getSession: async (id) => session(id) },
      { end: () => undefined },
      logger,
      {
        store: {
          createUnresolved: () => {
            throw new Error('database is not open');
          },
          createAttempted: () => Promise.reject(new Error('down')),
          createSettled: () => undefined,
          unresolvedCreates: () => [],
        },
      },
    );
    await expect(broken.createSession(input())).rejects.toMatchObject({ code: 'deadline_exceeded' });
    expect(broken.pending()).toBe(1);
    await vi.advanceTimersByTimeAsync(1000); // the re-POST's rejected attempt write is not an unhandled rejection
    broken.stop();
  });
});

describe('CreateResolver.resumeUnresolved (start-up recovery, takeover)', () => {
  it('re-sends each stored request with its key, ends the session it made, and deletes the row', async () => {
    const r = rig([session('sess_old')], {}, [storedRow('old')]);
    expect(await r.resolver.resumeUnresolved()).toBe(1);
    expect(r.creates).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(r.creates).toEqual([input('old')]);
    expect(r.ends).toEqual([{ id: 'sess_old', reason: 'error', detail: 'create_http_504', callId: 'old' }]);
    expect(r.outcomes).toEqual(['ended']);
    expect(r.table.size).toBe(0);
    expect(r.writes).toEqual(['attempt sip-old', 'end sess_old', 'settle sip-old']);
  });

  it('tries a row older than the give-up bound once before giving up on it', async () => {
    const r = rig([unknownOutcome('timeout')], {}, [storedRow('ancient', { failed_at: Date.now() - 3_600_000 })]);
    await r.resolver.resumeUnresolved();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(1);
    expect(r.outcomes).toEqual(['gave_up']);
    expect(r.table.size).toBe(0);
  });

  it('skips a key resolving here already, and forgets an unreadable row without sending anything', async () => {
    const rows = [storedRow('x', { request: '{"mode": "bidirectional_translation", "idempotencyKey": "other"}' })];
    const r = rig([unknownOutcome(), session('sess_a')], {}, rows);
    await expect(r.resolver.createSession(input('a'))).rejects.toThrow();
    expect(await r.resolver.resumeUnresolved()).toBe(0);
    expect(r.outcomes).toEqual(['dropped']);
    expect([...r.table.keys()]).toEqual(['sip-a']);
    await vi.advanceTimersByTimeAsync(100);
    expect(r.ends.map((e) => e.id)).toEqual(['sess_a']);
    expect(r.creates.map((c) => c.idempotencyKey)).toEqual(['sip-a', 'sip-a']);
  });

  it('continues the stored attempt count, with the backoff of a fresh start', async () => {
    const r = rig([unknownOutcome(), session('sess_r')], {}, [storedRow('r', { attempts: 40 })]);
    await r.resolver.resumeUnresolved();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.table.get('sip-r')?.attempts).toBe(41);
    await vi.advanceTimersByTimeAsync(200); // backoff(1) of this run: at most 200 ms, not 2^40
    expect(r.ends.map((e) => e.id)).toEqual(['sess_r']);
  });
});
