/**
 * The DATA_DIR instance lock: one daemon per data directory, taken before anything reads or repairs the registry.
 *
 * Why: start-up recovery closes every call the registry shows as active and ends its Kallglot session, because a
 * call left active by a previous process is an orphan of a crash. That is only true if no other live process uses
 * the same registry. Without a lock, a second `npm start` (or a second container on the same volume, or the new half
 * of a blue/green deploy) would "recover" the first instance's live calls and cut their translations.
 *
 * How: an OS-level advisory lock, held by the kernel for this process and released by the kernel when the process
 * dies, even on SIGKILL or OOM, so there is no stale-lock cleanup to get wrong. Node has no flock(2); SQLite's
 * `locking_mode = EXCLUSIVE` takes and keeps a POSIX fcntl write lock on the file after the first write
 * transaction, which is exactly that, portable to every filesystem SQLite supports (node:sqlite, no native addon).
 * `gateway.lock` is therefore a tiny SQLite file nobody reads; who holds it is written beside it, in
 * `gateway.lock.json`, so a refused instance can name the holder (an exclusively locked database cannot be read).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export interface LockHolder {
  pid: number;
  host: string;
  instanceId: string;
  startedAt: string;
}

export class InstanceLockedError extends Error {
  override name = 'InstanceLockedError';
  readonly holder: LockHolder | undefined;

  constructor(dataDir: string, holder: LockHolder | undefined) {
    const who = holder
      ? `pid ${holder.pid} on ${holder.host} (instance ${holder.instanceId}, started ${holder.startedAt})`
      : 'another process (holder unknown)';
    super(
      `data directory ${path.resolve(dataDir)} (DATA_DIR) is in use by ${who}; ` +
        'stop that instance first, or give this one its own DATA_DIR',
    );
    this.holder = holder;
  }
}

const LOCK_FILE = 'gateway.lock';
const HOLDER_FILE = 'gateway.lock.json';

export class InstanceLock {
  readonly dataDir: string;
  readonly holder: LockHolder;
  #db: DatabaseSync | undefined;

  // biome-ignore lint/style/useConsistentMemberAccessibility: a private constructor has no #-form; acquire() is the only way in
  private constructor(dataDir: string, holder: LockHolder, db: DatabaseSync) {
    this.dataDir = dataDir;
    this.holder = holder;
    this.#db = db;
  }

  /** Takes the lock or throws InstanceLockedError naming the holder. Never waits: a busy lock is an answer. */
  static acquire(dataDir: string, instanceId: string): InstanceLock {
    fs.mkdirSync(dataDir, { recursive: true });
    const file = path.join(dataDir, LOCK_FILE);
    const db = new DatabaseSync(file, { timeout: 0 });
    try {
      db.exec('PRAGMA locking_mode = EXCLUSIVE');
      // The first write transaction takes the fcntl write lock; in EXCLUSIVE mode it is kept after COMMIT.
      db.exec('BEGIN EXCLUSIVE');
      db.exec('CREATE TABLE IF NOT EXISTS instance_lock (taken_at INTEGER)');
      db.exec('COMMIT');
    } catch (err) {
      db.close();
      if (isBusy(err)) throw new InstanceLockedError(dataDir, readHolder(dataDir));
      throw err;
    }
    const holder: LockHolder = {
      pid: process.pid,
      host: os.hostname(),
      instanceId,
      startedAt: new Date().toISOString(),
    };
    // Written after the lock is ours, atomically (rename), so a reader never sees half a file.
    const tmp = path.join(dataDir, `${HOLDER_FILE}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, `${JSON.stringify(holder)}\n`);
    fs.renameSync(tmp, path.join(dataDir, HOLDER_FILE));
    return new InstanceLock(dataDir, holder, db);
  }

  /** Releases the lock (also released by the kernel if the process dies). Safe to call twice. */
  release(): void {
    if (!this.#db) return;
    // Remove our holder record first: once the lock is free, a new holder may write its own.
    const holderFile = path.join(this.dataDir, HOLDER_FILE);
    if (readHolder(this.dataDir)?.pid === process.pid) fs.rmSync(holderFile, { force: true });
    this.#db.close();
    this.#db = undefined;
  }
}

function isBusy(err: unknown): boolean {
  const e = err as { errcode?: number; message?: string };
  // SQLITE_BUSY (5) or SQLITE_LOCKED (6): someone else holds the file lock.
  return e.errcode === 5 || e.errcode === 6 || /database is locked/i.test(String(e.message));
}

function readHolder(dataDir: string): LockHolder | undefined {
  try {
    const parsed = JSON.parse(fs.readFileSync(path.join(dataDir, HOLDER_FILE), 'utf8')) as Partial<LockHolder>;
    if (typeof parsed.pid !== 'number' || typeof parsed.host !== 'string') return undefined;
    return {
      pid: parsed.pid,
      host: parsed.host,
      instanceId: String(parsed.instanceId ?? ''),
      startedAt: String(parsed.startedAt ?? ''),
    };
  } catch {
    return undefined;
  }
}
