/**
 * The one place that picks the registry adapter: SQLite under DATA_DIR (the default, guarded by the DATA_DIR lock)
 * or PostgreSQL when REGISTRY_URL is set (guarded by this instance's lease, which also takes over dead instances).
 * Either way the guard is taken before anything reads the registry, so a second process with the same identity
 * stops here and never reaches recovery, which would close the first one's live calls.
 */
import type { Logger } from '../logger.ts';
import { CallRegistry } from './call-registry.ts';
import { InstanceLock } from './instance-lock.ts';
import { InstanceLease } from './lease.ts';
import type { RegistryPort } from './port.ts';
import type { Recovery } from './recovery.ts';

export interface OpenRegistryOptions {
  dataDir: string;
  instanceId: string;
  /** REGISTRY_URL; empty: SQLite. */
  url: string;
  deadAfterSec: number;
  leaseIntervalSec: number;
  logger: Logger;
}

export interface OpenedRegistry {
  registry: RegistryPort;
  /** For logs: the adapter and where it keeps its data, never a credential. */
  where: string;
  /** Start taking over dead instances' calls, session ends and creates (PostgreSQL; nothing to do on SQLite). */
  takeOverWith(recovery: Recovery, onTakeover?: (instanceId: string, calls: number) => void): void;
  /** Release the lease or the lock, after every write has committed. */
  close(): Promise<void>;
}

export async function openRegistry(o: OpenRegistryOptions): Promise<OpenedRegistry> {
  const onError = (err: unknown): void => o.logger.error({ err }, 'call registry write failed');
  if (!o.url) {
    const lock = InstanceLock.acquire(o.dataDir, o.instanceId);
    let registry: CallRegistry;
    try {
      registry = new CallRegistry(o.dataDir, { instanceId: o.instanceId, onError });
    } catch (err) {
      lock.release();
      throw err;
    }
    return {
      registry,
      where: `sqlite (${o.dataDir}/gateway.db)`,
      takeOverWith: () => undefined,
      close: async () => {
        registry.close();
        lock.release();
      },
    };
  }
  // Imported here, not at the top: the pg driver costs ~10 MiB of RSS that a SQLite gateway has no use for.
  const { PgRegistry } = await import('./pg-registry.ts');
  const registry = await PgRegistry.open({ url: o.url, instanceId: o.instanceId, onError });
  const where = `postgres (${describeRegistryUrl(o.url)})`;
  if (registry.migrated.length > 0) o.logger.info({ versions: registry.migrated, where }, 'shared registry migrated');
  let onTakeover: ((instanceId: string, calls: number) => void) | undefined;
  const lease = new InstanceLease({
    registry,
    logger: o.logger.child({ component: 'lease' }),
    intervalMs: o.leaseIntervalSec * 1000,
    deadAfterSec: o.deadAfterSec,
    onTakeover: (id, calls) => onTakeover?.(id, calls),
  });
  try {
    await lease.acquire();
  } catch (err) {
    await registry.close();
    throw err;
  }
  lease.start();
  return {
    registry,
    where,
    takeOverWith: (recovery, hook) => {
      onTakeover = hook;
      lease.takeOverWith(recovery);
    },
    close: async () => {
      // Writes first: once the lease is expired a survivor takes over every session end still pending.
      await registry.commitNow();
      await lease.release();
      await registry.close();
    },
  };
}

/** host:port/database of a PostgreSQL URL: what an operator needs to see, without its user, password or options. */
export function describeRegistryUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}${u.port ? `:${u.port}` : ''}${u.pathname}`;
  } catch {
    return 'unparseable URL';
  }
}
