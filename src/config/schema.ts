/**
 * The one configuration schema of the daemon (convict). Every setting has an env name operators use; a config file
 * (GATEWAY_CONFIG, JSON or YAML) may set the same keys; env overrides file, file overrides defaults.
 */
import './formats.ts'; // registers the named formats used below

export const schema = {
  sip: {
    engine: {
      doc: 'SIP engine: embedded (built-in) or drachtio (needs a drachtio-server)',
      format: ['embedded', 'drachtio'],
      default: 'embedded',
      env: 'SIP_ENGINE',
    },
    host: {
      // Default `::` (dual-stack): IPv4 and IPv6 PBXs reach the same port with no setting, and a machine without
      // IPv6 loses nothing, since the embedded engine then listens on 0.0.0.0 (with a warning) instead of failing.
      doc: 'SIP listen address: :: (default) is dual-stack, IPv4 and IPv6 on one port, and falls back to 0.0.0.0 where the machine has no IPv6; 0.0.0.0 for IPv4 only, ::1 or another address for that address only',
      format: 'ip-address',
      default: '::',
      env: 'SIP_HOST',
    },
    port: { doc: 'SIP listen port (UDP and TCP)', format: 'port', default: 5060, env: 'SIP_PORT' },
    transports: {
      doc: 'SIP transports to listen on, comma separated',
      format: 'transport-list',
      default: ['udp', 'tcp'],
      env: 'SIP_TRANSPORTS',
    },
    publicAddress: {
      doc: 'Address written in Via/Contact: one IP or hostname, or "IPv4,IPv6" for a dual-stack gateway (each toward peers of its family). Empty: SIP_HOST; for 0.0.0.0 the first non-internal IPv4; for :: that IPv4 toward IPv4 peers and the first non-internal, non-link-local IPv6 toward IPv6 peers',
      format: 'public-address',
      default: '',
      env: 'SIP_PUBLIC_ADDRESS',
    },
    maxMessageSize: {
      doc: 'Largest SIP message accepted, bytes',
      format: 'positive',
      default: 65535,
      env: 'SIP_MAX_MESSAGE_SIZE',
    },
    userAgent: {
      doc: 'User-Agent/Server header value',
      format: String,
      default: 'kallglot-sip-gateway',
      env: 'SIP_USER_AGENT',
    },
  },
  drachtio: {
    host: {
      doc: 'drachtio-server admin host (SIP_ENGINE=drachtio)',
      format: String,
      default: '127.0.0.1',
      env: 'DRACHTIO_HOST',
    },
    port: { doc: 'drachtio-server admin port', format: 'port', default: 9022, env: 'DRACHTIO_PORT' },
    secret: {
      doc: 'drachtio-server admin secret',
      format: String,
      default: 'cymru',
      env: 'DRACHTIO_SECRET',
      sensitive: true,
    },
  },
  http: {
    host: {
      doc: 'HTTP listen address (health, webhooks, metrics)',
      format: 'ip-address',
      default: '0.0.0.0',
      env: 'HTTP_HOST',
    },
    port: { doc: 'HTTP listen port', format: 'port', default: 8080, env: 'HTTP_PORT' },
    adminToken: {
      doc: 'Bearer token for admin endpoints (/calls); empty disables them',
      format: String,
      default: '',
      env: 'ADMIN_TOKEN',
      sensitive: true,
    },
    publicBaseUrl: {
      doc: 'Externally reachable base URL of this HTTP server (e.g. https://gw.example.com), used to build Telnyx callback URLs',
      format: 'public-url',
      default: '',
      env: 'PUBLIC_BASE_URL',
    },
  },
  kallglot: {
    apiUrl: {
      doc: 'Kallglot API base URL, e.g. https://api.kallglot.com/v1. Empty: no account (see kallglot.sandbox)',
      format: 'kallglot-url',
      default: '',
      env: 'KALLGLOT_API_URL',
    },
    apiKey: {
      doc: 'Kallglot API key (sk_live_… / sk_test_…)',
      format: String,
      default: '',
      env: 'KALLGLOT_API_KEY',
      sensitive: true,
    },
    sandbox: {
      doc: 'Run the local Kallglot sandbox (no real translation) instead of KALLGLOT_API_URL. Outside production it is also used when KALLGLOT_API_URL is empty; with NODE_ENV=production only when this is true',
      format: 'boolean',
      default: false,
      env: 'KALLGLOT_SANDBOX',
    },
    requestTimeoutMs: {
      doc: 'Timeout of one Kallglot HTTP attempt',
      format: 'positive',
      default: 1500,
      env: 'KALLGLOT_REQUEST_TIMEOUT_MS',
    },
    retries: {
      doc: 'Retries of a Kallglot request (network errors, 5xx, 429); 0: one attempt only',
      format: 'nat',
      default: 2,
      env: 'KALLGLOT_RETRIES',
    },
    createDeadlineMs: {
      doc: 'Total time a call waits for session creation before falling back',
      format: 'positive',
      default: 2000,
      env: 'KALLGLOT_CREATE_DEADLINE_MS',
    },
    endDeadlineMs: {
      doc: 'Total time of one end-session attempt series',
      format: 'positive',
      default: 10000,
      env: 'KALLGLOT_END_DEADLINE_MS',
    },
    requestStyle: {
      doc: 'Shape of the create-session request: routing (current docs: routing + sip_uri) or provider (the older guide: provider {type telnyx, sip_uri})',
      format: ['routing', 'provider'],
      default: 'routing',
      env: 'KALLGLOT_REQUEST_STYLE',
    },
  },
  telnyx: {
    sipDomain: {
      doc: 'Telnyx SIP domain used in Request-URIs',
      format: String,
      default: 'sip.telnyx.com',
      env: 'TELNYX_SIP_DOMAIN',
    },
    outboundProxy: {
      doc: 'host:port to send Telnyx-bound INVITEs to instead of resolving the domain',
      format: 'host-port',
      default: '',
      env: 'TELNYX_OUTBOUND_PROXY',
    },
    sipTransport: {
      doc: 'Transport toward Telnyx',
      format: ['udp', 'tcp'],
      default: 'udp',
      env: 'TELNYX_SIP_TRANSPORT',
    },
    sipUsername: {
      doc: 'Telnyx credential-connection username (empty: IP connection)',
      format: String,
      default: '',
      env: 'TELNYX_SIP_USERNAME',
    },
    sipPassword: {
      doc: 'Telnyx credential-connection password',
      format: String,
      default: '',
      env: 'TELNYX_SIP_PASSWORD',
      sensitive: true,
    },
    translatedUriTemplate: {
      doc: 'Request-URI of the translated leg ({session_id}, {domain}, {called})',
      format: 'sip-uri-template',
      default: 'sip:{session_id}@{domain}',
      env: 'TRANSLATED_URI_TEMPLATE',
    },
    directUriTemplate: {
      doc: 'Request-URI of the untranslated direct route ({called}, {calling}, {domain})',
      format: 'sip-uri-template',
      default: 'sip:{called}@{domain}',
      env: 'DIRECT_URI_TEMPLATE',
    },
    apiKey: {
      doc: 'Telnyx API key (Call Control)',
      format: String,
      default: '',
      env: 'TELNYX_API_KEY',
      sensitive: true,
    },
    publicKey: {
      doc: 'Telnyx webhook public key (base64 Ed25519)',
      format: String,
      default: '',
      env: 'TELNYX_PUBLIC_KEY',
    },
    connectionId: {
      doc: 'Telnyx Call Control connection id for outbound calls',
      format: String,
      default: '',
      env: 'TELNYX_CONNECTION_ID',
    },
    apiBaseUrl: {
      doc: 'Telnyx REST API base URL (empty: the SDK default; tests point it at a fake)',
      format: 'telnyx-url',
      default: '',
      env: 'TELNYX_BASE_URL',
    },
    webhookToleranceSec: {
      doc: 'Largest accepted age (or clock skew) of a signed Telnyx webhook, seconds',
      format: 'positive',
      default: 300,
      env: 'WEBHOOK_TOLERANCE_SEC',
    },
    directNumber: {
      doc: 'Number an untranslated TeXML or inbound Call Control call goes to (bypass or Kallglot failure); empty: TeXML dials the called number, Call Control rejects',
      format: String,
      default: '',
      env: 'DIRECT_NUMBER',
    },
    streamOnAnswer: {
      doc: 'Outbound Call Control calls: start the media stream on call.answered instead of with the dial',
      format: 'boolean',
      default: false,
      env: 'TELNYX_STREAM_ON_ANSWER',
    },
    fallbackNotice: {
      doc: 'Inbound Call Control calls: text spoken before an untranslated transfer after a Kallglot failure (empty: none)',
      format: String,
      default: '',
      env: 'TELNYX_FALLBACK_NOTICE',
    },
  },
  calls: {
    allowedSources: {
      doc: 'PBX source IPs/CIDRs allowed to send INVITEs, comma separated',
      format: 'cidr-list',
      default: ['127.0.0.0/8', '::1/128'],
      env: 'PBX_ALLOWED_SOURCES',
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
      doc: 'New calls per second allowed in total (0: no limit)',
      format: 'nat',
      default: 30,
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
  },
  routing: {
    file: {
      doc: 'Language routing rules (YAML or JSON)',
      format: String,
      default: 'config/routing.yaml',
      env: 'ROUTING_FILE',
    },
  },
  nodeEnv: {
    doc: 'production makes start-up fail closed: no Kallglot sandbox unless KALLGLOT_SANDBOX=true',
    format: ['development', 'production', 'test'],
    default: 'development',
    env: 'NODE_ENV',
  },
  dataDir: {
    doc: 'Directory for the call registry and pending session ends; one running instance per directory (locked)',
    format: String,
    default: 'data',
    env: 'DATA_DIR',
  },
  instanceId: {
    doc: "This instance's identity in the call registry (empty: hostname:SIP_PORT)",
    format: String,
    default: '',
    env: 'INSTANCE_ID',
  },
  registry: {
    retentionDays: {
      doc: 'Days ended calls (and their events) stay in the call registry before they are pruned (0: keep forever)',
      format: 'nat',
      default: 30,
      env: 'REGISTRY_RETENTION_DAYS',
    },
  },
  log: {
    level: {
      doc: 'Log level',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
    format: {
      doc: 'Log output: pretty (human-readable), json (one JSON object a line), auto (pretty when stdout is a terminal)',
      format: ['auto', 'pretty', 'json'],
      default: 'auto',
      env: 'LOG_FORMAT',
    },
  },
} as const;
