/**
 * The INVITE the gateway sends toward Telnyx for a call from the PBX: the PBX's identity, the headers that may cross
 * a B2BUA, its SDP as it is (or none: delayed offer, with the ACK held back for the PBX's answer), our Telnyx
 * credentials, and the caller's Max-Forwards minus one.
 *
 * `trunk` is the Telnyx connection the call goes out on (domain, proxy, transport, credentials, number format);
 * `telnyx` holds what is the same for every trunk (how long one SBC may stay silent).
 */
import type { GatewayConfig } from '../config/load.ts';
import type { TelnyxTrunk } from '../config/trunks.ts';
import type { HeaderList, InboundCall, OutboundInviteOptions } from '../sip/port.ts';
import { passThroughInviteHeaders, sessionTimerHeaders } from './policy.ts';
import { toE164 } from './trunk-dialling.ts';

export interface TelnyxLeg {
  uri: string;
  extraHeaders: HeaderList;
  /** Give up (CANCEL) when not answered in time; absent: the caller and Telnyx decide. */
  timeoutMs?: number;
}

export function telnyxInvite(
  call: InboundCall,
  telnyx: GatewayConfig['telnyx'],
  leg: TelnyxLeg,
  trunk: TelnyxTrunk,
): OutboundInviteOptions {
  const headers = call.headers();
  return {
    uri: leg.uri,
    proxy: trunk.outboundProxy || undefined,
    transport: trunk.sipTransport,
    from: {
      // Telnyx shows (and checks) the caller id in E.164: the trunk's number format applies to it too.
      uri: `sip:${toE164(call.callingUser, trunk.numberFormat) || 'anonymous'}@${trunk.sipDomain}`,
      displayName: displayNameOf(call.from),
    },
    headers: [...passThroughInviteHeaders(headers), ...sessionTimerHeaders(headers).headers, ...leg.extraHeaders],
    body: call.body,
    contentType: call.contentType,
    auth: trunk.sipUsername ? { username: trunk.sipUsername, password: trunk.sipPassword } : undefined,
    timeoutMs: leg.timeoutMs,
    targetTimeoutMs: telnyx.targetTimeoutMs,
    maxForwards: nextMaxForwards(call.header('Max-Forwards')),
    deferAck: call.body.length === 0,
  };
}

export function displayNameOf(fromHeader: string): string | undefined {
  const m = /^\s*"((?:[^"\\]|\\.)*)"\s*</.exec(fromHeader) ?? /^\s*([^"<]+?)\s*</.exec(fromHeader);
  return m?.[1] ? m[1].replace(/\\(.)/g, '$1') : undefined;
}

/** The caller's Max-Forwards minus one (the engine already answered 483 to zero), 70 when absent or garbled. */
export function nextMaxForwards(value: string | undefined): number {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) && n > 0 ? Math.min(70, n - 1) : 70;
}
