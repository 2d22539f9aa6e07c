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
 * Only SIP calls die with this process. TeXML and Call Control calls run at Telnyx with media going straight to
 * Kallglot: they survive a gateway restart, and their call.hangup webhook ends their sessions.
 */
import type { Logger } from '../logger.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { RegistryPort } from './port.ts';

export async function recoverOrphans(
  registry: Pick<RegistryPort, 'closeOrphans'>,
  ender: Pick<SessionEnder, 'resumePending'>,
  logger: Logger,
): Promise<{ orphans: number; pendingEnds: number }> {
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
  const pendingEnds = await ender.resumePending();
  return { orphans: orphans.length, pendingEnds };
}
