/**
 * Start-up recovery (runs only once this process holds the DATA_DIR instance lock, or its lease on a shared
 * registry, and has bound its ports, so a second instance can never reach it and "recover" the live calls of the
 * first): SIP calls a previous run of this instance left 'active' (it crashed or was killed) can no longer be in
 * progress here, so their Kallglot sessions are ended (reason `error`, detail `gateway_restart`) and the rows closed;
 * then every persisted, unconfirmed session end of this instance is retried.
 *
 * Why every Kallglot session that was created gets ended, although writes are group-committed (a kill -9 loses the
 * last few milliseconds of them, call-registry.ts): the session id is committed (commitNow) before the outbound
 * INVITE that uses it is sent, so a call that could have reached anyone has its row, 'active' with its session id,
 * on disk. Whatever later write was lost (answer, end, the pending end written in the same turn as the end) leaves
 * that row active, and this sweep closes it and ends its session; a lost confirmation only repeats an end. The one
 * gap is a crash between Kallglot's create response and that commit, before any INVITE.
 *
 * A create that failed with an unknown outcome (timeout, reset, 500/502/504) has no session id to commit, yet may
 * have made a session: the CreateResolver records it (unresolved_creates) and this recovery hands those rows back to
 * it (resumeUnresolved), which re-sends each with its Idempotency-Key and ends any session that comes back.
 *
 * Only SIP calls die with this process. TeXML and Call Control calls run at Telnyx with media going straight to
 * Kallglot: they survive a gateway restart, and their call.hangup webhook ends their sessions.
 */
import type { Logger } from '../logger.ts';
import type { CreateResolver } from '../sessions/create-resolver.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { RegistryPort } from './port.ts';

/** What recovery, and the takeover of a dead instance (lease.ts), hand the registry's leftovers to. */
export interface Recovery {
  /** The unconfirmed session ends: retried. */
  ender: Pick<SessionEnder, 'resumePending'>;
  /** The Kallglot creates of unknown outcome: re-sent with their key, any session they made ended. */
  creates: Pick<CreateResolver, 'resumeUnresolved'>;
}

export interface Recovered {
  orphans: number;
  pendingEnds: number;
  unresolvedCreates: number;
}

/** Start-up recovery (see the file comment); logs what it found. */
export async function recoverOrphans(
  registry: Pick<RegistryPort, 'closeOrphans'>,
  recovery: Recovery,
  logger: Logger,
): Promise<Recovered> {
  const orphans = await registry.closeOrphans({ endReason: 'gateway_restart', detail: 'gateway_restart' });
  for (const row of orphans) {
    logger.warn(
      {
        callId: row.call_id,
        sessionId: row.session_id,
        leftBy: row.instance_id,
        since: new Date(row.invite_at).toISOString(),
      },
      'orphaned call from a previous run closed',
    );
  }
  const pendingEnds = await recovery.ender.resumePending();
  const unresolvedCreates = await recovery.creates.resumeUnresolved();
  const recovered = { orphans: orphans.length, pendingEnds, unresolvedCreates };
  if (orphans.length || pendingEnds || unresolvedCreates) logger.warn(recovered, 'recovered state from a previous run');
  return recovered;
}
