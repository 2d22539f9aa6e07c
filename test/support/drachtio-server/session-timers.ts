/**
 * What drachtio-server does on its own about RFC 4028 session timers that changes what crosses the wire
 * deterministically; modelled because the gateway relays session timers and must live with it:
 * - a re-INVITE or UPDATE asking a Session-Expires below Min-SE is refused 422 with `Min-SE: 90` and never reaches the
 *   client (sip-dialog-controller.cpp processRequestInsideDialog; Min-SE is fixed at 90 s: sip-dialog.cpp m_nMinSE);
 * - the 200 to an initial INVITE that offered Session-Expires with a refresher gets `Session-Expires:
 *   max(90, asked);refresher=<asked>` when the client's 200 has none (doRespondToSipRequest; without a refresher
 *   parameter the `default-refresher` setting applies, "none" by default: no header).
 * Not modelled: the timers themselves (sip-dialog.cpp doSessionTimerHandling): drachtio-server re-INVITEs a peer
 * that named it refresher at half the interval (± 5 s of jitter) and BYEs a peer that fails to refresh.
 */
import type { SipRequest } from '../../../src/sip/embedded/message.ts';

export const MIN_SE = 90;

function sessionExpires(value: string | undefined): { delta: number; refresher?: string } | undefined {
  const m = /^\s*(\d+)\s*(?:;(.*))?$/.exec(value ?? '');
  if (!m) return undefined;
  const refresher = /(?:^|;)\s*refresher\s*=\s*(\w+)/i.exec(m[2] ?? '')?.[1]?.toLowerCase();
  return refresher ? { delta: Number(m[1]), refresher } : { delta: Number(m[1]) };
}

/** An in-dialog INVITE or UPDATE drachtio-server answers 422 itself. */
export function belowMinSe(req: SipRequest): boolean {
  if (req.method !== 'INVITE' && req.method !== 'UPDATE') return false;
  const se = sessionExpires(req.headers.get('Session-Expires'));
  return se !== undefined && se.delta < MIN_SE;
}

/** The Session-Expires drachtio-server puts on a 2xx whose client gave none, or undefined. */
export function serverSessionExpires(invite: SipRequest): string | undefined {
  const se = sessionExpires(invite.headers.get('Session-Expires'));
  if (!se?.refresher) return undefined;
  return `${Math.max(MIN_SE, se.delta)};refresher=${se.refresher}`;
}
