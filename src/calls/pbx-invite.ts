/**
 * The INVITE the gateway sends toward the PBX for an inbound call (from Telnyx), on its untranslated route: the
 * caller's identity on our address, the headers that may cross a B2BUA, the SDP as it is (or none: delayed offer),
 * no Telnyx credentials, the caller's Max-Forwards minus one. PBX_OUTBOUND_PROXY, when set, is the next hop.
 */
import type { GatewayConfig } from '../config/load.ts';
import type { InboundCall, OutboundInviteOptions, SipTransportName } from '../sip/port.ts';
import { displayNameOf, nextMaxForwards } from './telnyx-invite.ts';
import type { TelnyxLeg } from './telnyx-invite.ts';
import { passThroughInviteHeaders, sessionTimerHeaders } from './policy.ts';

export function pbxInvite(call: InboundCall, config: GatewayConfig, leg: TelnyxLeg): OutboundInviteOptions {
  const host = config.sip.publicAddress.includes(':') ? `[${config.sip.publicAddress}]` : config.sip.publicAddress;
  return {
    uri: leg.uri,
    proxy: config.calls.pbxOutboundProxy || undefined,
    transport: uriTransport(leg.uri),
    from: { uri: `sip:${call.callingUser || 'anonymous'}@${host}`, displayName: displayNameOf(call.from) },
    headers: [
      ...passThroughInviteHeaders(call.headers()),
      ...sessionTimerHeaders(call.headers()).headers,
      ...leg.extraHeaders,
    ],
    body: call.body,
    contentType: call.contentType,
    timeoutMs: leg.timeoutMs,
    maxForwards: nextMaxForwards(call.header('Max-Forwards')),
    deferAck: call.body.length === 0,
  };
}

/** The PBX URI's transport: a sips: URI or `;transport=tls` is TLS, `;transport=tcp` TCP, else UDP (RFC 3263 §4.1). */
function uriTransport(uri: string): SipTransportName {
  if (/^sips:/i.test(uri) || /;transport=tls\b/i.test(uri)) return 'tls';
  return /;transport=tcp\b/i.test(uri) ? 'tcp' : 'udp';
}
