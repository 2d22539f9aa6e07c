/**
 * The registry adapters as the parity suite sees them: one factory per adapter that opens a registry for an
 * instance, "restarts" it (a new process run of the same instance on the same data) and reads its rows from
 * outside, so one test body runs against SQLite and PostgreSQL alike.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CallRegistry } from '../../src/registry/call-registry.ts';
import { PgRegistry } from '../../src/registry/pg-registry.ts';
import type { RegistryPort } from '../../src/registry/port.ts';
import { type PostgresServer, startPostgres } from '../helpers/postgres.ts';

export interface AdapterStore {
  /** A registry of `instanceId` on this store (a new process run each call). */
  open(instanceId?: string): Promise<RegistryPort>;
  /** Close every registry opened and drop the store. */
  close(): Promise<void>;
}

export interface Adapter {
  name: 'sqlite' | 'postgres';
  /** A fresh, empty store (a DATA_DIR, or a database). */
  store(): Promise<AdapterStore>;
  /** Once, after every test of the adapter. */
  shutdown(): Promise<void>;
}

export function sqliteAdapter(): Adapter {
  return {
    name: 'sqlite',
    async store() {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-parity-'));
      const opened: CallRegistry[] = [];
      return {
        async open(instanceId = 'gw-a') {
          // One process run at a time on a DATA_DIR (the instance lock): the previous run is over.
          for (const r of opened.splice(0)) r.close();
          const reg = new CallRegistry(dir, { instanceId });
          opened.push(reg);
          return reg;
        },
        async close() {
          for (const r of opened.splice(0)) r.close();
          fs.rmSync(dir, { recursive: true, force: true });
        },
      };
    },
    async shutdown() {},
  };
}

export function postgresAdapter(): Adapter {
  let server: Promise<PostgresServer> | undefined;
  return {
    name: 'postgres',
    async store() {
      server ??= startPostgres();
      const url = await (await server).createDatabase();
      const opened: PgRegistry[] = [];
      return {
        async open(instanceId = 'gw-a') {
          const reg = await PgRegistry.open({ url, instanceId });
          opened.push(reg);
          return reg;
        },
        async close() {
          await Promise.all(opened.splice(0).map((r) => r.close()));
        },
      };
    },
    async shutdown() {
      if (server) await (await server).stop();
    },
  };
}
