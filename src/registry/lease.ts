/**
 * Instance leases on the shared registry (REGISTRY_URL), which replace the DATA_DIR lock of the SQLite registry.
 *
 * Each instance keeps one row in `instances` and renews its lease_at every REGISTRY_LEASE_INTERVAL_SEC, always with
 * the database's clock (now()), never its own: the instances' clocks may disagree, the database's is one. An instance
 * whose lease is older than INSTANCE_DEAD_AFTER_SEC is dead; the first survivor to notice takes over its calls
 * (PgRegistry.takeOver: ends their Kallglot sessions, closes their rows, resolves their creates of unknown outcome),
 * exactly once across survivors.
 *
 * Races and their rules:
 *  - Two survivors see the same dead instance: the DELETE of its lease row inside takeOver decides; the second finds
 *    nothing and does nothing.
 *  - The dead instance comes back while a survivor takes it over: its acquire() and the survivor's DELETE touch the
 *    same row; whichever commits first wins and the other's conditional statements find nothing to do.
 *  - Two processes started with one INSTANCE_ID: the second waits for the first's lease to expire and, as long as it
 *    is renewed, refuses to start (LeaseHeldError, exit code 3, like a DATA_DIR in use).
 *  - A registry outage makes every lease stale at once: when it is back, an instance takes nothing over until it has
 *    itself renewed for INSTANCE_DEAD_AFTER_SEC without a failure, so every live peer has had time to renew too.
 *  - This instance is taken for dead (paused, cut off from the registry) although it lives: its renewal finds its row
 *    gone; it says so loudly and takes a fresh lease. Its calls' sessions were ended by the survivor.
 *  - A clean stop expires the lease at once (release), so a survivor takes over any session end still pending and
 *    a restart of the same instance does not wait.
 */
import os from 'node:os';
import type { Logger } from '../logger.ts';
import type { PgRegistry } from './pg-registry.ts';
import type { Recovery } from './recovery.ts';

export class LeaseHeldError extends Error {
  override name = 'LeaseHeldError';
}

export interface InstanceLeaseDeps {
  registry: Pick<PgRegistry, 'pool' | 'instanceId' | 'owner' | 'takeOver'>;
  logger: Logger;
  intervalMs: number;
  deadAfterSec: number;
  /** A dead instance was taken over (metrics). */
  onTakeover?: (instanceId: string, calls: number) => void;
}

export class InstanceLease {
  readonly #d: InstanceLeaseDeps;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;
  #stopped = false;
  /** Since when renewals have not failed (undefined: the last one failed). */
  #healthySince: number | undefined;
  /** Set once the session ender and the create resolver exist (takeOverWith): until then the lease is only renewed. */
  #recovery: Recovery | undefined;

  constructor(deps: InstanceLeaseDeps) {
    this.#d = deps;
  }

  /** From now on, dead instances are taken over: their session ends and unresolved creates are seen through here. */
  takeOverWith(recovery: Recovery): void {
    this.#recovery = recovery;
  }

  /** Takes this instance's lease, waiting (at most INSTANCE_DEAD_AFTER_SEC and one interval) for a stale one to expire. */
  async acquire(): Promise<void> {
    const { registry, deadAfterSec, intervalMs } = this.#d;
    const deadline = Date.now() + deadAfterSec * 1000 + intervalMs;
    for (;;) {
      const taken = await registry.pool.query(
        `INSERT INTO instances (instance_id, incarnation, host, pid, started_at, lease_at)
         VALUES ($1, $2, $3, $4, now(), now())
         ON CONFLICT (instance_id) DO UPDATE SET incarnation = EXCLUDED.incarnation, host = EXCLUDED.host,
           pid = EXCLUDED.pid, started_at = now(), lease_at = now()
         WHERE instances.lease_at < now() - make_interval(secs => $5)`,
        [registry.instanceId, registry.owner, os.hostname(), process.pid, deadAfterSec],
      );
      if ((taken.rowCount ?? 0) > 0) break;
      const holder = await this.#holder();
      if (Date.now() > deadline) {
        throw new LeaseHeldError(
          `instance ${registry.instanceId} is already running on the shared registry (${holder}); ` +
            'stop it first, or give this one its own INSTANCE_ID',
        );
      }
      this.#d.logger.warn(
        { instanceId: registry.instanceId, holder },
        'another process holds this instance id: waiting for its lease to expire (a restart after a crash)',
      );
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
    this.#healthySince = Date.now();
  }

  /** Renewals and dead-instance checks every interval; the timer never keeps the process alive. */
  start(): void {
    const next = (): void => {
      if (this.#stopped) return;
      this.#timer = setTimeout(() => {
        this.#ticking = this.tick().finally(() => {
          this.#ticking = undefined;
          next();
        });
      }, this.#d.intervalMs);
      this.#timer.unref();
    };
    next();
  }

  /** One renewal, then (when healthy long enough) the takeover of every dead instance. Never throws. */
  async tick(): Promise<void> {
    try {
      if (!(await this.#renew()) || !this.#recovery) return;
      const since = this.#healthySince ?? Date.now();
      if (Date.now() - since < this.#d.deadAfterSec * 1000) return;
      for (const dead of await this.#deadInstances()) await this.#takeOver(dead);
    } catch (err) {
      this.#healthySince = undefined;
      this.#d.logger.error({ err }, 'instance lease: registry unreachable; retrying at the next interval');
    }
  }

  /** Stops renewing and expires the lease at once (a clean stop). */
  async release(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#ticking;
    const { registry } = this.#d;
    await registry.pool
      .query(`UPDATE instances SET lease_at = '-infinity' WHERE instance_id = $1 AND incarnation = $2`, [
        registry.instanceId,
        registry.owner,
      ])
      .catch((err: unknown) => this.#d.logger.warn({ err }, 'could not release the instance lease; it will expire'));
  }

  async #renew(): Promise<boolean> {
    const { registry, logger } = this.#d;
    const renewed = await registry.pool.query(
      'UPDATE instances SET lease_at = now() WHERE instance_id = $1 AND incarnation = $2',
      [registry.instanceId, registry.owner],
    );
    if ((renewed.rowCount ?? 0) > 0) {
      this.#healthySince ??= Date.now();
      return true;
    }
    // Our row is gone (taken for dead) or another process took this instance id over.
    logger.error(
      { instanceId: registry.instanceId, holder: await this.#holder() },
      'instance lease lost: another instance took this one for dead and ended its calls; taking a new lease',
    );
    this.#healthySince = undefined;
    await registry.pool.query(
      `INSERT INTO instances (instance_id, incarnation, host, pid) VALUES ($1, $2, $3, $4)
       ON CONFLICT (instance_id) DO NOTHING`,
      [registry.instanceId, registry.owner, os.hostname(), process.pid],
    );
    return false;
  }

  async #deadInstances(): Promise<string[]> {
    const { registry, deadAfterSec } = this.#d;
    const { rows } = await registry.pool.query<{ instance_id: string }>(
      `SELECT instance_id FROM instances WHERE instance_id <> $1 AND lease_at < now() - make_interval(secs => $2)
       ORDER BY lease_at`,
      [registry.instanceId, deadAfterSec],
    );
    return rows.map((r) => r.instance_id);
  }

  async #takeOver(dead: string): Promise<void> {
    const { registry, logger } = this.#d;
    const rows = await registry.takeOver(dead, this.#d.deadAfterSec);
    if (rows === undefined) return; // another survivor was first, or it came back
    for (const row of rows) {
      logger.warn(
        { callId: row.call_id, sessionId: row.session_id, lostInstance: dead },
        'call of a lost instance closed',
      );
    }
    // Both now this instance's (takeOver moved them in its transaction), with any of its own not yet resumed.
    const pendingEnds = (await this.#recovery?.ender.resumePending()) ?? 0;
    const unresolvedCreates = (await this.#recovery?.creates.resumeUnresolved()) ?? 0;
    const found = { lostInstance: dead, pendingEnds, unresolvedCreates };
    if (rows.length > 0) logger.warn({ ...found, calls: rows.length }, 'took over a lost instance');
    else logger.info(found, 'lease of a stopped or lost instance cleared');
    this.#d.onTakeover?.(dead, rows.length);
  }

  async #holder(): Promise<string> {
    const { rows } = await this.#d.registry.pool.query<{ host: string; pid: number; age: number }>(
      `SELECT host, pid, extract(epoch FROM now() - lease_at)::float8 AS age FROM instances WHERE instance_id = $1`,
      [this.#d.registry.instanceId],
    );
    const h = rows[0];
    return h ? `pid ${h.pid} on ${h.host}, lease renewed ${Math.round(h.age)} s ago` : 'holder unknown';
  }
}
