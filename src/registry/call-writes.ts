/**
 * The registry as the SIP call path writes to it (the CallRecorder of calls/types.ts, matched structurally): a
 * registry failing must never fail a call, so every write is guarded and logged, and nothing here makes the call
 * wait, except commitNow before the outbound INVITE. That wait is short on SQLite (one COMMIT on the next check phase,
 * shared by every call that asks in the same loop turn) and bounded on a shared registry: one that does not answer
 * delays each new call by at most COMMIT_WAIT_MS, then the INVITE goes ahead without it.
 */
import type { Logger } from '../logger.ts';
import type { CallEnd, CallPatch, NewCall, RegistryPort } from './port.ts';

const COMMIT_WAIT_MS = 2000;

export interface CallWrites {
  callStarted(c: NewCall): void;
  update(callId: string, patch: CallPatch): void;
  callEnded(callId: string, end: CallEnd): void;
  commitNow(): void | Promise<void>;
}

export function guardedCallWrites(registry: RegistryPort, logger: Logger, commitWaitMs = COMMIT_WAIT_MS): CallWrites {
  const guard = (what: string, write: () => unknown): void => {
    try {
      // A write's promise (PostgreSQL) reports its own failure through the registry's onError.
      write();
    } catch (err) {
      logger.error({ err, what }, 'call registry write failed');
    }
  };
  return {
    callStarted: (c) => guard('callStarted', () => registry.callStarted(c)),
    update: (id, patch) => guard('update', () => registry.update(id, patch)),
    callEnded: (id, end) => guard('callEnded', () => registry.callEnded(id, end)),
    commitNow: () => {
      let committed: void | Promise<void>;
      try {
        committed = registry.commitNow();
      } catch (err) {
        logger.error({ err, what: 'commitNow' }, 'call registry write failed');
        return;
      }
      if (!(committed instanceof Promise)) return;
      // SQLite commits in this process on the next check phase and cannot hang: no timer per call to bound it.
      return registry.kind === 'sqlite' ? committed : bounded(committed, commitWaitMs, logger);
    },
  };
}

function bounded(commit: Promise<void>, waitMs: number, logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      logger.error({ waitedMs: waitMs }, 'call registry commit is slow: the INVITE goes ahead without waiting');
      resolve();
    }, waitMs);
    commit.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      () => {
        clearTimeout(timer); // reported by the registry's onError
        resolve();
      },
    );
  });
}
