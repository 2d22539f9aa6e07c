/**
 * Start-up recovery of Kallglot creates of unknown outcome, with the real SQLite registry, SessionEnder and
 * CreateResolver over a fake Kallglot: a first run records the failed create and "crashes" before resolving it (it is
 * abandoned once its group has committed, its registry closed with nothing left to commit); the next run on the same DATA_DIR re-sends the stored request with its
 * key, ends the session it made exactly once (reason error) and deletes the row.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { KallglotError } from '../../src/kallglot/errors.ts';
import type { CreateSessionInput, EndReason, KallglotSession } from '../../src/kallglot/types.ts';
import { CallRegistry, GROUP_COMMIT_MS } from '../../src/registry/call-registry.ts';
import { recoverOrphans } from '../../src/registry/recovery.ts';
import { CreateResolver } from '../../src/sessions/create-resolver.ts';
import { SessionEnder } from '../../src/sessions/ender.ts';

const logger = pino({ level: 'silent' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dirs: string[] = [];
const opened: CallRegistry[] = [];
const resolvers: CreateResolver[] = [];
afterEach(() => {
  for (const r of resolvers.splice(0)) r.stop();
  for (const r of opened.splice(0)) r.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const request: CreateSessionInput = {
  mode: 'bidirectional_translation',
  sourceLanguage: 'de',
  targetLanguage: 'en',
  metadata: { sip_call_id: 'crash@pbx' },
  idempotencyKey: 'sip-crash@pbx',
};

/** One process run on `dir`: its registry, a Kallglot that answers creates with `createReply`, ender and resolver. */
function run(dir: string, createReply: () => Promise<KallglotSession>, firstDelayMs: number) {
  const registry = new CallRegistry(dir, { instanceId: 'gw-a' });
  opened.push(registry);
  const creates: CreateSessionInput[] = [];
  const ends: Array<{ id: string; reason: EndReason }> = [];
  const api = {
    createSession: (i: CreateSessionInput) => {
      creates.push(i);
      return createReply();
    },
    getSession: async (id: string): Promise<KallglotSession> => ({ id, status: 'created', mode: 'x', raw: {} }),
    endSession: async (id: string, reason: EndReason) => {
      ends.push({ id, reason });
    },
  };
  const ender = new SessionEnder(api, logger, { store: registry });
  const creates$ = new CreateResolver(api, ender, logger, { store: registry, firstDelayMs, maxDelayMs: 50 });
  resolvers.push(creates$);
  return { registry, ender, resolver: creates$, creates, ends };
}

describe('start-up recovery of creates of unknown outcome', () => {
  it('a create left unresolved by a crash is re-sent with its key at the next start, its session ended once', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-recovery-'));
    dirs.push(dir);
    const timeout = Object.assign(new KallglotError('deadline', { code: 'deadline_exceeded' }), {
      outcomeUnknown: true,
    });
    // Run 1: the create times out; its resolution would start an hour later: the process dies first.
    const first = run(dir, () => Promise.reject(timeout), 3_600_000);
    await expect(first.resolver.createSession(request)).rejects.toBe(timeout);
    await sleep(GROUP_COMMIT_MS * 4); // the group commit, nobody waited for it
    expect(first.resolver.pending()).toBe(1);
    const onDisk = new DatabaseSync(path.join(dir, 'gateway.db'), { readOnly: true });
    expect(onDisk.prepare('SELECT idempotency_key FROM unresolved_creates').all()).toEqual([
      { idempotency_key: 'sip-crash@pbx' },
    ]);
    onDisk.close();
    // The process is gone: nothing more of it runs (one process at a time on a DATA_DIR, the instance lock).
    first.registry.close();

    // Run 2 on the same DATA_DIR: Kallglot had made the session all the same.
    const second = run(dir, async () => ({ id: 'sess_made', status: 'created', mode: 'x', raw: {} }), 10);
    const persisted = second.registry.unresolvedCreates();
    expect(persisted).toMatchObject([{ idempotency_key: 'sip-crash@pbx', call_id: 'crash@pbx', attempts: 0 }]);
    expect(JSON.parse(persisted[0]!.request)).toEqual(request);
    const recovered = await recoverOrphans(second.registry, { ender: second.ender, creates: second.resolver }, logger);
    expect(recovered).toEqual({ orphans: 0, pendingEnds: 0, unresolvedCreates: 1 });
    for (let i = 0; i < 100 && (second.ends.length === 0 || second.registry.pendingEnds().length > 0); i++) {
      await sleep(10);
    }
    expect(second.creates).toEqual([request]);
    expect(second.ends).toEqual([{ id: 'sess_made', reason: 'error' }]);
    expect(second.registry.unresolvedCreates()).toEqual([]);
    expect(second.registry.pendingEnds()).toEqual([]);
    second.resolver.stop();
    second.registry.close();

    // A third start finds nothing left: nothing is re-sent, nothing ended again.
    const third = run(dir, () => Promise.reject(new Error('not expected')), 10);
    const again = await recoverOrphans(third.registry, { ender: third.ender, creates: third.resolver }, logger);
    expect(again).toEqual({ orphans: 0, pendingEnds: 0, unresolvedCreates: 0 });
    await sleep(50);
    expect(third.creates).toEqual([]);
    expect(third.ends).toEqual([]);
  });
});
