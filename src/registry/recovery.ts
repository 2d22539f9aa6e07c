/**
 * Start-up recovery (runs only once this process holds the DATA_DIR instance lock and has bound its ports, so a
 * second instance can never reach it and "recover" the live calls of the first): calls a previous process left 'active' (it crashed or was killed) can no longer be in progress
 * here, so their Kallglot sessions are ended (reason `error`, detail `gateway_restart`) and the rows closed; then
 * every persisted, unconfirmed session end is retried.
 */
import type { Logger } from '../logger.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { CallRegistry } from './call-registry.ts';

export function recoverOrphans(
  registry: CallRegistry,
  ender: SessionEnder,
  logger: Logger,
): { orphans: number; pendingEnds: number } {
  // Only SIP calls die with this process. TeXML and Call Control calls run at Telnyx with media going straight to
  // Kallglot: they survive a gateway restart, and their call.hangup webhook ends their sessions.
  const orphans = registry.orphans().filter((row) => row.kind === 'sip');
  for (const row of orphans) {
    if (row.session_id && row.session_end_status !== 'ended' && row.session_end_status !== 'not_found') {
      registry.addPendingEnd(row.session_id, row.call_id, 'error', 'gateway_restart');
    }
    registry.callEnded(row.call_id, { reason: 'gateway_restart' });
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
  const pendingEnds = ender.resumePending();
  return { orphans: orphans.length, pendingEnds };
}
