/**
 * The `calls` section of the configuration schema (schema.ts): admission, limits, the PBX side and call policies.
 * Its own file only to keep schema.ts under the house size limit; it is read only through schema.ts.
 */
export const callsSchema = {
  allowedSources: {
    doc: 'PBX source IPs/CIDRs allowed to send INVITEs, comma separated',
    format: 'cidr-list',
    default: ['127.0.0.0/8', '::1/128'],
    env: 'PBX_ALLOWED_SOURCES',
  },
  telnyxAllowedSources: {
    doc: "Telnyx signalling IPs/CIDRs whose INVITEs are inbound calls toward the PBX (needs PBX_URI_TEMPLATE); default: Telnyx's published US, EU, Canada and Australia signalling IPs",
    format: 'cidr-list',
    default: [
      '192.76.120.10',
      '64.16.250.10',
      '5.172.39.10',
      '5.172.39.25',
      '193.108.220.10',
      '193.108.220.25',
      '103.135.104.10',
      '103.135.104.25',
    ],
    env: 'TELNYX_ALLOWED_SOURCES',
  },
  pbxUriTemplate: {
    doc: 'Inbound calls (from Telnyx): the PBX target ({called}, {calling}), e.g. sip:{called}@pbx.example.com:5060; also the sip_uri Kallglot connects to. Empty: inbound calls are refused (403)',
    format: 'optional-sip-uri-template',
    default: '',
    env: 'PBX_URI_TEMPLATE',
  },
  pbxOutboundProxy: {
    doc: 'Inbound calls: host:port to send the PBX leg to instead of resolving the PBX_URI_TEMPLATE host',
    format: 'host-port',
    default: '',
    env: 'PBX_OUTBOUND_PROXY',
  },
  pbxAuthUsers: {
    doc: 'Optional digest credentials the PBX must present, "user:password,..." (empty: no challenge)',
    format: 'credential-list',
    default: [],
    env: 'PBX_AUTH_USERS',
    sensitive: true,
  },
  pbxAuthRealm: {
    doc: 'Digest realm used to challenge the PBX',
    format: String,
    default: 'kallglot-gateway',
    env: 'PBX_AUTH_REALM',
  },
  maxConcurrent: {
    doc: 'Concurrent calls allowed in total (0: no limit)',
    format: 'nat',
    default: 500,
    env: 'MAX_CONCURRENT_CALLS',
  },
  maxCallsPerSecond: {
    // 20: Telnyx refuses more than 20 outbound INVITEs a second per source IP (and per credential username) with
    // "503 CPS Limit reached"; admitting more would only turn the excess into failed calls and fallback INVITEs.
    doc: "New calls per second allowed in total (0: no limit); 20 is Telnyx's default per-source-IP limit",
    format: 'nat',
    default: 20,
    env: 'MAX_CALLS_PER_SECOND',
  },
  maxConcurrentPerSource: {
    doc: 'Concurrent calls allowed per PBX source address (0: no per-source limit)',
    format: 'nat',
    default: 0,
    env: 'MAX_CONCURRENT_CALLS_PER_SOURCE',
  },
  maxCallsPerSecondPerSource: {
    doc: 'New calls per second allowed per PBX source address (0: no per-source limit)',
    format: 'nat',
    default: 0,
    env: 'MAX_CALLS_PER_SECOND_PER_SOURCE',
  },
  rateLimitPolicy: {
    doc: 'On Kallglot rate_limit_exceeded: fallback (direct route) or busy',
    format: ['fallback', 'busy'],
    default: 'fallback',
    env: 'RATE_LIMIT_POLICY',
  },
  busyStatus: {
    doc: 'SIP status for the busy policy: 486 or 503 (with Retry-After)',
    format: [486, 503],
    default: 486,
    env: 'RATE_LIMIT_BUSY_STATUS',
  },
  redirectPolicy: {
    doc: 'A 3xx from Telnyx: follow (try its Contact targets, at most 3, only to REDIRECT_ALLOWED_DOMAINS) or relay (pass it to the PBX with its Contact)',
    format: ['follow', 'relay'],
    default: 'follow',
    env: 'REDIRECT_POLICY',
  },
  redirectAllowedDomains: {
    doc: 'Hosts a followed redirect may go to, comma separated; each also allows its subdomains (empty: TELNYX_SIP_DOMAIN only)',
    format: 'host-list',
    default: [],
    env: 'REDIRECT_ALLOWED_DOMAINS',
  },
  referPolicy: {
    doc: 'A REFER (transfer) from either side: relay (to the other leg, with Refer-To/Referred-By) or reject (603)',
    format: ['relay', 'reject'],
    default: 'relay',
    env: 'REFER_POLICY',
  },
  translatedLegTimeoutSec: {
    doc: 'Seconds the translated leg may take to answer before falling back (no early media yet; 0: no limit)',
    format: 'nat',
    default: 60,
    env: 'TRANSLATED_LEG_TIMEOUT_SEC',
  },
  drainTimeoutSec: {
    doc: 'On SIGTERM, how long active calls may continue before they are hung up (0: hang up at once)',
    format: 'nat',
    default: 30,
    env: 'DRAIN_TIMEOUT_SEC',
  },
  maxCallDurationSec: {
    doc: 'Hang up calls older than this (0: no limit)',
    format: 'nat',
    default: 14400,
    env: 'MAX_CALL_DURATION_SEC',
  },
} as const;
