import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallRegistry } from '../../src/registry/call-registry.ts';
import { guardedCallWrites } from '../../src/registry/call-writes.ts';
import type { RegistryPort } from '../../src/registry/port.ts';

const dirs: string[] = [];
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function collectingLogger() {
  const lines: Array<{ msg: string }> = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

describe('guardedCallWrites', () => {
  it('on SQLite, commitNow resolves once the session id is on disk, with no timer of its own', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-writes-'));
    dirs.push(dir);
    const registry = new CallRegistry(dir);
    const writes = guardedCallWrites(registry, collectingLogger().logger);
    writes.callStarted({ callId: 'c1' });
    writes.update('c1', { sessionId: 'sess_1' });
    const committed = writes.commitNow();
    expect(committed).toBeInstanceOf(Promise);
    await committed;
    const disk = new DatabaseSync(path.join(dir, 'gateway.db'), { readOnly: true });
    expect(disk.prepare('SELECT session_id FROM calls WHERE call_id = ?').get('c1')).toEqual({ session_id: 'sess_1' });
    disk.close();
    registry.close();
  });

  it('on a shared registry that does not answer, the INVITE goes ahead after the bound, logged', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { logger, lines } = collectingLogger();
    const stuck = { kind: 'postgres', commitNow: () => new Promise<void>(() => undefined) } as unknown as RegistryPort;
    let done = false;
    void (guardedCallWrites(stuck, logger, 100).commitNow() as Promise<void>).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(99);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(done).toBe(true);
    expect(lines.map((l) => l.msg)).toContain('call registry commit is slow: the INVITE goes ahead without waiting');
  });

  it('a registry write that throws is logged, never thrown into the call', () => {
    const { logger, lines } = collectingLogger();
    const broken = {
      kind: 'sqlite',
      update: () => {
        throw new Error('disk I/O error');
      },
      commitNow: () => {
        throw new Error('disk I/O error');
      },
    } as unknown as RegistryPort;
    const writes = guardedCallWrites(broken, logger);
    expect(() => writes.update('c1', { answerAt: 1 })).not.toThrow();
    expect(writes.commitNow()).toBeUndefined();
    expect(lines.filter((l) => l.msg === 'call registry write failed')).toHaveLength(2);
  });
});
