import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CallRegistry, GROUP_COMMIT_MS } from '../../src/registry/call-registry.ts';
import { RegistryError, SCHEMA_VERSION } from '../../src/registry/db.ts';
import { DatabaseSync } from 'node:sqlite';

const dirs: string[] = [];
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-reg-'));
  dirs.push(d);
  return d;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('CallRegistry', () => {
  it('records a call through its life and reads it back', () => {
    const reg = new CallRegistry(tmpDir());
    expect(
      reg.callStarted({ callId: 'c1', pbxSource: '10.0.0.1', from: '+1555', to: '+4930', rule: 'german' }, 1000),
    ).toBe(true);
    expect(reg.callStarted({ callId: 'c1' })).toBe(false);
    reg.update('c1', { sessionId: 'sess_1', telnyxUri: 'sip:sess_1@sip.telnyx.com', route: 'translated' });
    reg.update('c1', { answerAt: 1500 });
    expect(reg.active().map((c) => c.call_id)).toEqual(['c1']);
    expect(reg.callEnded('c1', { reason: 'bye_from_pbx', sipStatus: 200 }, 9000)).toBe(true);
    expect(reg.callEnded('c1', { reason: 'again' })).toBe(false);
    const row = reg.get('c1')!;
    expect(row).toMatchObject({
      state: 'ended',
      session_id: 'sess_1',
      route: 'translated',
      answer_at: 1500,
      end_at: 9000,
      end_reason: 'bye_from_pbx',
      sip_status: 200,
      from_user: '+1555',
    });
    expect(reg.bySession('sess_1')?.call_id).toBe('c1');
    expect(reg.active()).toEqual([]);
    reg.close();
  });

  it('persists pending session ends across a reopen and confirms them', () => {
    const dir = tmpDir();
    const a = new CallRegistry(dir);
    a.callStarted({ callId: 'c2' });
    a.update('c2', { sessionId: 'sess_2' });
    a.addPendingEnd('sess_2', 'c2', 'agent_hangup', 'bye_from_pbx');
    a.addPendingEnd('sess_2', 'c2', 'error', 'second request ignored');
    a.endAttemptFailed('sess_2', 'http 503');
    a.close();
    const b = new CallRegistry(dir);
    expect(b.pendingEnds()).toMatchObject([
      { session_id: 'sess_2', reason: 'agent_hangup', attempts: 1, last_error: 'http 503' },
    ]);
    expect(b.get('c2')?.session_end_status).toBe('pending');
    b.sessionEndConfirmed('sess_2', 'ended');
    expect(b.pendingEnds()).toEqual([]);
    expect(b.get('c2')?.session_end_status).toBe('ended');
    b.close();
  });

  it('treats active calls of another process as orphans', () => {
    const dir = tmpDir();
    const first = new CallRegistry(dir);
    first.callStarted({ callId: 'old' });
    first.close();
    const second = new CallRegistry(dir);
    second.callStarted({ callId: 'mine' });
    expect(second.orphans().map((c) => c.call_id)).toEqual(['old']);
    second.close();
  });

  describe('group commit', () => {
    afterEach(() => {
      vi.useRealTimers();
    });
    const watch = (dir: string) => {
      const other = new DatabaseSync(path.join(dir, 'gateway.db'), { readOnly: true });
      const count = () => (other.prepare('SELECT count(*) AS n FROM calls').get() as { n: number }).n;
      return { count, close: () => other.close() };
    };

    it('writes of several loop turns share one transaction, committed by one timer; reads see them before', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
      const dir = tmpDir();
      const reg = new CallRegistry(dir);
      const disk = watch(dir);
      reg.callStarted({ callId: 'a' });
      await Promise.resolve(); // a later turn of the loop
      vi.advanceTimersByTime(GROUP_COMMIT_MS - 1);
      reg.callStarted({ callId: 'b' });
      reg.update('b', { telnyxUri: 'sip:b@sip.telnyx.com' });
      expect(disk.count()).toBe(0); // nothing committed yet
      expect(reg.get('b')?.telnyx_uri).toBe('sip:b@sip.telnyx.com'); // the same connection sees its writes
      expect(reg.active().map((c) => c.call_id)).toEqual(['a', 'b']);
      vi.advanceTimersByTime(1);
      expect(disk.count()).toBe(2); // one timer, one commit for both turns
      expect(vi.getTimerCount()).toBe(0); // and no timer while nothing is written
      reg.callStarted({ callId: 'c' });
      vi.advanceTimersByTime(GROUP_COMMIT_MS);
      expect(disk.count()).toBe(3); // the next write opened the next group
      disk.close();
      reg.close();
    });

    it('commitNow: the callers of one loop turn share one commit, durable once it resolves', async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] });
      const dir = tmpDir();
      const reg = new CallRegistry(dir);
      const disk = watch(dir);
      expect(reg.commitNow()).toBeUndefined(); // nothing to commit: nothing to wait for
      reg.callStarted({ callId: 'a' });
      reg.update('a', { sessionId: 'sess_a' });
      const first = reg.commitNow();
      reg.callStarted({ callId: 'b' });
      reg.update('b', { sessionId: 'sess_b' });
      const second = reg.commitNow();
      expect(second).toBe(first); // one COMMIT for both calls
      expect(disk.count()).toBe(0); // not before the check phase: the caller must wait for the promise
      vi.advanceTimersToNextTimer(); // the setImmediate, long before the group's timer
      await first;
      expect(disk.count()).toBe(2);
      expect(vi.getTimerCount()).toBe(0); // the group's timer went with the commit
      reg.callStarted({ callId: 'c' });
      expect(reg.commitNow()).not.toBe(first); // a later turn gets its own commit
      disk.close();
      reg.close();
    });

    it('close() commits the open group, and a pending commitNow still resolves', async () => {
      const dir = tmpDir();
      const reg = new CallRegistry(dir);
      reg.callStarted({ callId: 'a' });
      const committed = reg.commitNow();
      reg.callStarted({ callId: 'b' });
      reg.close();
      await committed;
      const after = new CallRegistry(dir);
      expect(after.orphans().map((c) => c.call_id)).toEqual(['a', 'b']);
      after.close();
    });

    it('a kill -9 loses at most the open group; the session id committed by commitNow survives', async () => {
      const dir = tmpDir();
      const reg = new CallRegistry(dir);
      reg.callStarted({ callId: 'a' });
      reg.update('a', { sessionId: 'sess_a' });
      await reg.commitNow();
      reg.update('a', { answerAt: 1500 }); // still in the open group when the process dies
      const disk = new DatabaseSync(path.join(dir, 'gateway.db'), { readOnly: true });
      const row = disk.prepare('SELECT * FROM calls WHERE call_id = ?').get('a') as {
        session_id: string;
        answer_at: null;
      };
      expect(row).toMatchObject({ session_id: 'sess_a', answer_at: null, state: 'active' }); // recovery ends sess_a
      disk.close();
      reg.close();
    });
  });

  it('deduplicates events by key', () => {
    const reg = new CallRegistry(tmpDir());
    expect(reg.addEvent('c3', 'call.answered', { a: 1 }, 'evt-1')).toBe(true);
    expect(reg.addEvent('c3', 'call.answered', { a: 1 }, 'evt-1')).toBe(false);
    expect(reg.events('c3')).toMatchObject([{ type: 'call.answered', data: { a: 1 } }]);
    reg.close();
  });

  it('migrates to the current schema version and refuses a newer one', () => {
    const dir = tmpDir();
    new CallRegistry(dir).close();
    const db = new DatabaseSync(path.join(dir, 'gateway.db'));
    expect((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version).toBe(SCHEMA_VERSION);
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION + 5}`);
    db.close();
    expect(() => new CallRegistry(dir)).toThrow(/newer than this gateway supports/);
  });

  it('gives a clear error for a corrupt database file and an unwritable directory', () => {
    const dir = tmpDir();
    fs.writeFileSync(path.join(dir, 'gateway.db'), Buffer.alloc(4096, 0x41));
    expect(() => new CallRegistry(dir)).toThrow(RegistryError);
    expect(() => new CallRegistry(dir)).toThrow(/gateway\.db/);
    const file = path.join(tmpDir(), 'not-a-dir');
    fs.writeFileSync(file, 'x');
    expect(() => new CallRegistry(path.join(file, 'sub'))).toThrow(/DATA_DIR/);
  });
});
