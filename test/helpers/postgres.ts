/**
 * A real PostgreSQL (Debian package `postgresql`) for tests: a throwaway cluster in a temp directory, on a free port
 * of 127.0.0.1, with trust authentication and durability off (fsync) because nothing in it must survive the test.
 * PostgreSQL refuses to run as root, so as root the cluster belongs to the `postgres` user and initdb/pg_ctl run
 * under runuser; as any other user they run as that user. `stop()` stops it and removes the directory; every
 * started cluster is also stopped when the test process exits.
 *
 * Each test takes a fresh database of its own (`createDatabase()`), so tests sharing one cluster never see each
 * other's rows.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { freePort } from './ports.ts';

const running = new Set<() => void>();
process.on('exit', () => {
  for (const stop of running) stop();
});

/** The bin directory of the newest installed PostgreSQL, or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!fs.existsSync(root)) return undefined;
  const versions = fs
    .readdirSync(root)
    .filter((v) => fs.existsSync(path.join(root, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? path.join(root, versions[0], 'bin') : undefined;
}

export function postgresAvailable(): boolean {
  return postgresBinDir() !== undefined;
}

export interface PostgresServer {
  port: number;
  /** postgres://postgres@127.0.0.1:PORT/postgres */
  url: string;
  /** A new, empty database; returns its URL (with a password, which trust authentication ignores, when asked). */
  createDatabase(opts?: { password?: string }): Promise<string>;
  /** The server's log, for assertion messages. */
  log(): string;
  stop(): Promise<void>;
}

const isRoot = (): boolean => process.getuid?.() === 0;

function run(bin: string, args: string[]): { status: number | null; output: string } {
  const cmd = isRoot() ? 'runuser' : bin;
  const argv = isRoot() ? ['-u', 'postgres', '--', bin, ...args] : args;
  const r = spawnSync(cmd, argv, { encoding: 'utf8', cwd: os.tmpdir() });
  return { status: r.status, output: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

export async function startPostgres(): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL not installed (apt-get install -y postgresql)');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-postgres-'));
  if (isRoot()) {
    const ids = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gids = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    fs.chownSync(dir, Number(ids.stdout.trim()), Number(gids.stdout.trim()));
  }
  const data = path.join(dir, 'data');
  const logFile = path.join(dir, 'server.log');
  const init = run(path.join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8']);
  if (init.status !== 0) throw new Error(`initdb failed:\n${init.output}`);
  const port = await freePort('tcp');
  const options = [
    `-k ${dir}`,
    `-p ${port}`,
    '-c listen_addresses=127.0.0.1',
    '-c fsync=off',
    '-c synchronous_commit=off',
    '-c full_page_writes=off',
    '-c max_connections=200',
  ].join(' ');
  const started = run(path.join(bin, 'pg_ctl'), ['-D', data, '-l', logFile, '-o', options, '-w', '-t', '30', 'start']);
  if (started.status !== 0) {
    throw new Error(`pg_ctl start failed:\n${started.output}\n${readLog(logFile)}`);
  }
  const stopNow = (): void => {
    run(path.join(bin, 'pg_ctl'), ['-D', data, '-m', 'immediate', '-w', 'stop']);
  };
  running.add(stopNow);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  let n = 0;
  return {
    port,
    url,
    async createDatabase(opts = {}) {
      const name = `kg_test_${process.pid}_${++n}_${Date.now() % 100_000}`;
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      const auth = opts.password ? `postgres:${encodeURIComponent(opts.password)}` : 'postgres';
      return `postgres://${auth}@127.0.0.1:${port}/${name}`;
    },
    log: () => readLog(logFile),
    async stop() {
      running.delete(stopNow);
      stopNow();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

function readLog(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-4000);
  } catch {
    return '(no server log)';
  }
}
