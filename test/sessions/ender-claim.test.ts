/**
 * SessionEnder on a store that claims ends (the registry's addPendingEnd): an end another request already holds
 * (another instance, a previous run) is not attempted here; with an asynchronous store (PostgreSQL) the attempt
 * waits for the claim; a claim that cannot be written is attempted all the same.
 */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { type PendingEndStore, SessionEnder } from '../../src/sessions/ender.ts';

const logger = pino({ level: 'silent' });

function store(opts: { async: boolean; held?: string[]; failClaim?: boolean }): PendingEndStore & { rows: string[] } {
  const rows = [...(opts.held ?? [])];
  const later = <T>(v: T): T | Promise<T> => (opts.async ? Promise.resolve(v) : v);
  return {
    rows,
    addPendingEnd: (id) => {
      if (opts.failClaim) return Promise.reject(new Error('registry down'));
      if (rows.includes(id)) return later(false);
      rows.push(id);
      return later(true);
    },
    endAttemptFailed: () => later(undefined),
    sessionEndConfirmed: (id) => {
      rows.splice(rows.indexOf(id), 1);
      return later(undefined);
    },
    pendingEnds: () => later(rows.map((id) => ({ session_id: id, call_id: null, reason: 'completed', detail: null }))),
  };
}

describe('SessionEnder with a claiming store', () => {
  for (const async of [false, true]) {
    it(`${async ? 'asynchronous' : 'synchronous'} store: attempts only the ends it claimed`, async () => {
      const ended: string[] = [];
      const s = store({ async, held: ['held-elsewhere'] });
      const ender = new SessionEnder({ endSession: async (id) => void ended.push(id) }, logger, { store: s });
      ender.end('mine', 'completed');
      ender.end('held-elsewhere', 'completed');
      expect(await ender.flush(1000)).toBe(true);
      expect(ended).toEqual(['mine']);
      // Not forgotten: once this instance owns it (a restart, a takeover), resumePending takes it up.
      expect(await ender.resumePending()).toBe(1);
      expect(await ender.flush(1000)).toBe(true);
      expect(ended).toEqual(['mine', 'held-elsewhere']);
    });
  }

  it('synchronous store: resumePending answers synchronously, as start-up recovery on SQLite expects', () => {
    const ender = new SessionEnder({ endSession: async () => undefined }, logger, {
      store: store({ async: false, held: ['a', 'b'] }),
    });
    expect(ender.resumePending()).toBe(2);
  });

  it('a claim that cannot be written is attempted anyway: a running session costs more than a second request', async () => {
    const ended: string[] = [];
    const ender = new SessionEnder({ endSession: async (id) => void ended.push(id) }, logger, {
      store: store({ async: true, failClaim: true }),
    });
    ender.end('s1', 'error');
    expect(await ender.flush(1000)).toBe(true);
    expect(ended).toEqual(['s1']);
  });
});
