/**
 * The PostgreSQL adapter's writes: one ordered queue per process, committed in groups.
 *
 * Why a queue: the call logic and the webhooks write without waiting (a SIP step never waits for the registry), so
 * two writes of one call may be in flight at once; sent over a pool they could reach the database out of order (an
 * update before its insert). Here every write joins the queue in the order it was made and the queue commits them in
 * that order.
 *
 * Group commit, as on SQLite: the writes made while the previous group was committing go to the database together,
 * in one transaction, so a busy gateway pays one round of commits per group, not one per write. A group that fails
 * (a deadlock with another instance, one bad statement) is rolled back and its writes are retried one by one, so one
 * failed write never takes the others down; a write that fails alone rejects its promise and is reported.
 */
import type { Pool, PoolClient } from 'pg';

/** What a write runs with: the transaction's connection. */
export type Queryable = Pick<PoolClient, 'query'>;

interface Op {
  run: (client: Queryable) => Promise<unknown>;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const noop = (): void => undefined;

export class WriteQueue {
  readonly #pool: Pool;
  readonly #onError: (err: unknown) => void;
  #queued: Op[] = [];
  #draining = false;
  #last: Promise<unknown> = Promise.resolve();

  constructor(pool: Pool, onError: (err: unknown) => void) {
    this.#pool = pool;
    this.#onError = onError;
  }

  /** Queue a write; its promise settles once its group has committed (or it failed on its own). */
  write<T>(run: (client: Queryable) => Promise<T>): Promise<T> {
    const done = new Promise<T>((resolve, reject) => {
      this.#queued.push({ run, resolve: resolve as (v: unknown) => void, reject });
    });
    // Reported through onError; a caller that never looks at a write's promise must not cause an unhandled rejection.
    done.catch(noop);
    this.#last = done;
    if (!this.#draining) {
      this.#draining = true;
      // Writes made in the rest of this turn of the event loop join the first group.
      queueMicrotask(() => void this.#drain());
    }
    return done;
  }

  /** Resolves once every write queued so far has committed or failed (read-your-writes, commitNow, close). */
  settled(): Promise<void> {
    return this.#last.then(noop, noop);
  }

  async #drain(): Promise<void> {
    while (this.#queued.length > 0) {
      const group = this.#queued.splice(0);
      if (!(await this.#commit(group))) for (const op of group) await this.#commit([op]);
    }
    this.#draining = false;
  }

  /** One transaction for the group. False when a group of several failed (each is then retried alone). */
  async #commit(group: Op[]): Promise<boolean> {
    let client: PoolClient | undefined;
    let broken = false;
    try {
      client = await this.#pool.connect();
      await client.query('BEGIN');
      const results: unknown[] = [];
      for (const op of group) results.push(await op.run(client));
      await client.query('COMMIT');
      for (const [i, op] of group.entries()) op.resolve(results[i]);
      return true;
    } catch (err) {
      if (client)
        broken = !(await client.query('ROLLBACK').then(
          () => true,
          () => false,
        ));
      if (group.length > 1) return false;
      this.#onError(err);
      for (const op of group) op.reject(err);
      return true;
    } finally {
      // A connection whose ROLLBACK failed is in an unknown state: the pool drops it instead of reusing it.
      client?.release(broken);
    }
  }
}
