/**
 * The registry database: SQLite (Node 24's built-in node:sqlite, no native addon to build) in WAL mode under
 * DATA_DIR. Migrations are numbered and tracked with PRAGMA user_version; a database that cannot be opened,
 * written or migrated is a start-up error naming the file.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DatabaseSync } from 'node:sqlite';

export class RegistryError extends Error {
  override name = 'RegistryError';
}

const MIGRATIONS: string[] = [
  // 1: calls, pending session ends, call events
  `CREATE TABLE calls (
     call_id TEXT PRIMARY KEY,
     kind TEXT NOT NULL DEFAULT 'sip',
     pbx_source TEXT,
     from_user TEXT,
     to_user TEXT,
     rule TEXT,
     session_id TEXT,
     route TEXT,
     fallback_reason TEXT,
     telnyx_uri TEXT,
     state TEXT NOT NULL DEFAULT 'active',
     owner TEXT,
     invite_at INTEGER NOT NULL,
     answer_at INTEGER,
     end_at INTEGER,
     end_reason TEXT,
     sip_status INTEGER,
     session_end_status TEXT,
     recording_url TEXT,
     recording_status TEXT,
     client_state TEXT
   );
   CREATE INDEX calls_state ON calls(state);
   CREATE INDEX calls_session ON calls(session_id);
   CREATE TABLE pending_session_ends (
     session_id TEXT PRIMARY KEY,
     call_id TEXT,
     reason TEXT NOT NULL,
     detail TEXT,
     requested_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     last_error TEXT
   );
   CREATE TABLE call_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     call_id TEXT NOT NULL,
     type TEXT NOT NULL,
     at INTEGER NOT NULL,
     dedupe_key TEXT UNIQUE,
     data TEXT
   );
   CREATE INDEX call_events_call ON call_events(call_id);`,
  // 2: the instance identity (INSTANCE_ID) that owns a call; `owner` stays the owning process run (incarnation)
  `ALTER TABLE calls ADD COLUMN instance_id TEXT;`,
  // 3: registry retention (retention.ts) finds ended calls and old events by time without scanning either table;
  // (state, end_at) also serves every query calls_state served
  `DROP INDEX calls_state;
   CREATE INDEX calls_state_end_at ON calls(state, end_at);
   CREATE INDEX call_events_at ON call_events(at);`,
  // 4: Kallglot creates whose outcome is unknown, until resolved (sessions/create-resolver.ts): a crash before their
  // resolution no longer loses a session Kallglot may have made; recovery re-sends them with their key
  `CREATE TABLE unresolved_creates (
     idempotency_key TEXT PRIMARY KEY,
     call_id TEXT,
     request TEXT NOT NULL,
     code TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     failed_at INTEGER NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0
   );`,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export function openDatabase(dataDir: string): DatabaseSync {
  const file = path.resolve(dataDir, 'gateway.db');
  try {
    fs.mkdirSync(dataDir, { recursive: true });
    fs.accessSync(dataDir, fs.constants.W_OK);
  } catch (err) {
    throw new RegistryError(
      `data directory ${path.resolve(dataDir)} is not writable (DATA_DIR): ${(err as Error).message}`,
    );
  }
  let db: DatabaseSync;
  try {
    db = new DatabaseSync(file);
    db.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 2000; PRAGMA foreign_keys = ON;',
    );
    const check = db.prepare('PRAGMA quick_check').get() as { quick_check?: string } | undefined;
    if (check && check.quick_check !== 'ok') throw new Error(`integrity check failed: ${String(check.quick_check)}`);
  } catch (err) {
    throw new RegistryError(
      `call registry ${file} cannot be opened (corrupt or unreadable?): ${(err as Error).message}`,
    );
  }
  migrate(db, file);
  return db;
}

function migrate(db: DatabaseSync, file: string): void {
  const row = db.prepare('PRAGMA user_version').get() as { user_version: number };
  const current = row.user_version;
  if (current > MIGRATIONS.length) {
    throw new RegistryError(
      `call registry ${file} has schema version ${current}, newer than this gateway supports (${MIGRATIONS.length})`,
    );
  }
  for (let v = current; v < MIGRATIONS.length; v++) {
    try {
      db.exec('BEGIN');
      db.exec(MIGRATIONS[v]);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // nothing to roll back
      }
      throw new RegistryError(`call registry ${file}: migration ${v + 1} failed: ${(err as Error).message}`);
    }
  }
}
