import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { SessionEnder, type PendingEndStore } from '../../src/sessions/ender.ts';
import { KallglotError } from '../../src/kallglot/errors.ts';

const logger = pino({ level: 'silent' });

function memoryStore(): PendingEndStore & { rows: Map<string, { reason: string; status?: string; attempts: number }> } {
  const rows = new Map<string, { reason: string; status?: string; attempts: number }>();
  return {
    rows,
    addPendingEnd: (id, _call, reason) => void (rows.has(id) || rows.set(id, { reason, attempts: 0 })),
    endAttemptFailed: (id) => void (rows.get(id)!.attempts += 1),
    sessionEndConfirmed: (id, status) => void (rows.get(id)!.status = status),
    pendingEnds: () =>
      [...rows]
        .filter(([, r]) => !r.status)
        .map(([id, r]) => ({ session_id: id, call_id: null, reason: r.reason, detail: null })),
  };
}

describe('SessionEnder', () => {
  it('ends each session exactly once, first reason wins', async () => {
    const calls: string[] = [];
    const ender = new SessionEnder({ endSession: async (id, reason) => void calls.push(`${id}:${reason}`) }, logger);
    ender.end('s1', 'agent_hangup');
    ender.end('s1', 'error');
    ender.end('s2', 'customer_hangup');
    expect(await ender.flush(1000)).toBe(true);
    expect(calls.sort((a, b) => a.localeCompare(b))).toEqual(['s1:agent_hangup', 's2:customer_hangup']);
  });

  it('retries until the API succeeds and persists the outcome', async () => {
    let failures = 3;
    let calls = 0;
    const store = memoryStore();
    const ender = new SessionEnder(
      {
        endSession: async () => {
          calls++;
          if (failures-- > 0) throw new KallglotError('down', { status: 503, code: 'service_unavailable' });
        },
      },
      logger,
      { store, baseDelayMs: 5, maxDelayMs: 20 },
    );
    ender.end('s3', 'completed');
    expect(store.rows.get('s3')?.status).toBeUndefined();
    expect(await ender.flush(2000)).toBe(true);
    expect(calls).toBe(4);
    expect(store.rows.get('s3')).toMatchObject({ status: 'ended', attempts: 3 });
  });

  it('treats 404 as already gone and stops', async () => {
    let calls = 0;
    const store = memoryStore();
    const ender = new SessionEnder(
      {
        endSession: async () => {
          calls++;
          throw new KallglotError('nf', { status: 404, code: 'not_found' });
        },
      },
      logger,
      { store },
    );
    ender.end('s4', 'completed');
    await ender.flush(1000);
    expect(calls).toBe(1);
    expect(store.rows.get('s4')?.status).toBe('not_found');
  });

  it('resumes ends persisted by a previous process', async () => {
    const store = memoryStore();
    await store.addPendingEnd('s5', undefined, 'agent_hangup');
    const ended: string[] = [];
    const ender = new SessionEnder({ endSession: async (id, reason) => void ended.push(`${id}:${reason}`) }, logger, {
      store,
    });
    expect(ender.resumePending()).toBe(1);
    await ender.flush(1000);
    expect(ended).toEqual(['s5:agent_hangup']);
    expect(store.rows.get('s5')?.status).toBe('ended');
  });

  it('shutdown waits (bounded) for pending ends, says when some are left, and stops retrying', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (l: string) => void lines.push(l) });
    let calls = 0;
    const down = async (): Promise<void> => {
      calls++;
      throw new KallglotError('down', { status: 503, code: 'service_unavailable' });
    };
    const ender = new SessionEnder({ endSession: down }, log, { baseDelayMs: 20, maxDelayMs: 20 });
    ender.end('s6', 'completed');
    await ender.shutdown(100);
    expect(lines.some((l) => l.includes('some Kallglot session ends did not complete before exit'))).toBe(true);
    const after = calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(calls).toBe(after);

    const ok = new SessionEnder({ endSession: async () => undefined }, log);
    ok.end('s7', 'completed');
    lines.length = 0;
    await ok.shutdown(1000);
    expect(lines).toEqual([]);
  });
});
