/**
 * The one configuration schema of the daemon (convict). Every setting has an env name operators use; a config file
 * (GATEWAY_CONFIG, JSON or YAML) may set the same keys; env overrides file, file overrides defaults.
 */
import net from 'node:net';
import convict from 'convict';

function hostPort(val: unknown): void {
  if (val === '' || val === null) return;
  if (typeof val !== 'string' || !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(val)) {
    throw new Error('must be host or host:port');
  }
  const port = val.match(/:(\d{1,5})$/);
  if (port && Number(port[1]) > 65535) throw new Error('port out of range');
}

function ipAddress(val: unknown): void {
  if (typeof val !== 'string' || !net.isIP(val)) throw new Error('must be an IP address');
}

function transports(val: unknown): void {
  const list = Array.isArray(val) ? val : String(val).split(',');
  if (list.length === 0) throw new Error('at least one transport is required');
  for (const t of list) if (t !== 'udp' && t !== 'tcp') throw new Error(`unknown transport "${String(t)}" (udp, tcp)`);
}

function cidrList(val: unknown): void {
  const list = Array.isArray(val) ? val : String(val).split(',');
  for (const raw of list) {
    const entry = String(raw).trim();
    if (!entry) continue;
    const [ip, bits] = entry.split('/');
    const family = net.isIP(ip ?? '');
    const max = family === 6 ? 128 : 32;
    if (!family || (bits !== undefined && !(Number(bits) >= 0 && Number(bits) <= max && /^\d+$/.test(bits)))) {
      throw new Error(`"${entry}" is not an IP address or CIDR`);
    }
  }
}

function httpBaseUrl(val: unknown): void {
  if (val === '') return;
  if (typeof val !== 'string' || !/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(val))
    throw new Error('must be an http(s) URL without query or fragment');
}

function uriTemplate(val: unknown): void {
  if (typeof val !== 'string' || !/^sips?:/.test(val)) throw new Error('must be a sip: or sips: URI template');
}

const listCoerce = (v: unknown): string[] =>
  Array.isArray(v)
    ? v.map(String)
    : String(v)
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);

// List values come from env as comma-separated text; convict only applies a coerce registered with a named format.
convict.addFormat({ name: 'transport-list', validate: transports, coerce: listCoerce });
convict.addFormat({ name: 'cidr-list', validate: cidrList, coerce: listCoerce });
convict.addFormat({
  name: 'credential-list',
  validate: (val: unknown) => {
    for (const e of Array.isArray(val) ? val : [])
      if (!/^[^:]+:.+$/.test(String(e))) throw new Error('entries must be user:password');
  },
  coerce: listCoerce,
});

export const schema = {
  sip: {
    engine: {
      doc: 'SIP engine: embedded (built-in) or drachtio (needs a drachtio-server)',
      format: ['embedded', 'drachtio'],
      default: 'embedded',
      env: 'SIP_ENGINE',
    },
    host: { doc: 'SIP listen address', format: ipAddress, default: '0.0.0.0', env: 'SIP_HOST' },
    port: { doc: 'SIP listen port (UDP and TCP)', format: 'port', default: 5060, env: 'SIP_PORT' },
    transports: {
      doc: 'SIP transports to listen on, comma separated',
      format: 'transport-list',
      default: ['udp', 'tcp'],
      env: 'SIP_TRANSPORTS',
    },
    publicAddress: {
      doc: 'Address written in Via/Contact/Record-Route (empty: SIP_HOST, or the first non-internal IPv4 when SIP_HOST is 0.0.0.0)',
      format: String,
      default: '',
      env: 'SIP_PUBLIC_ADDRESS',
    },
    maxMessageSize: {
      doc: 'Largest SIP message accepted, bytes',
      format: 'nat',
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
      format: ipAddress,
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
      format: httpBaseUrl,
      default: '',
      env: 'PUBLIC_BASE_URL',
    },
  },
  kallglot: {
    apiUrl: {
      doc: 'Kallglot API base URL, e.g. https://api.kallglot.com/v1. Empty: start the local sandbox',
      format: String,
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
    requestTimeoutMs: {
      doc: 'Timeout of one Kallglot HTTP attempt',
      format: 'nat',
      default: 1500,
      env: 'KALLGLOT_REQUEST_TIMEOUT_MS',
    },
    retries: {
      doc: 'Retries of a Kallglot request (network errors, 5xx, 429)',
      format: 'nat',
      default: 2,
      env: 'KALLGLOT_RETRIES',
    },
    createDeadlineMs: {
      doc: 'Total time a call waits for session creation before falling back',
      format: 'nat',
      default: 2000,
      env: 'KALLGLOT_CREATE_DEADLINE_MS',
    },
    endDeadlineMs: {
      doc: 'Total time of one end-session attempt series',
      format: 'nat',
      default: 10000,
      env: 'KALLGLOT_END_DEADLINE_MS',
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
      format: hostPort,
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
      format: uriTemplate,
      default: 'sip:{session_id}@{domain}',
      env: 'TRANSLATED_URI_TEMPLATE',
    },
    directUriTemplate: {
      doc: 'Request-URI of the untranslated direct route ({called}, {calling}, {domain})',
      format: uriTemplate,
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
      doc: 'Telnyx REST API base URL (tests point it at a fake)',
      format: String,
      default: '',
      env: 'TELNYX_BASE_URL',
    },
    webhookToleranceSec: {
      doc: 'Largest accepted age (or clock skew) of a signed Telnyx webhook, seconds',
      format: 'nat',
      default: 300,
      env: 'WEBHOOK_TOLERANCE_SEC',
    },
    directNumber: {
      doc: 'Number a TeXML call is dialled to when it is not translated (bypass or Kallglot failure); empty: the called number',
      format: String,
      default: '',
      env: 'DIRECT_NUMBER',
    },
    streamOnAnswer: {
      doc: 'Outbound Call Control calls: start the media stream on call.answered instead of with the dial',
      format: Boolean,
      default: false,
      env: 'TELNYX_STREAM_ON_ANSWER',
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
      doc: 'Concurrent calls allowed in total',
      format: 'nat',
      default: 500,
      env: 'MAX_CONCURRENT_CALLS',
    },
    maxCallsPerSecond: {
      doc: 'New calls per second allowed in total',
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
    translatedLegTimeoutSec: {
      doc: 'Seconds the translated leg may take to answer before falling back (no early media yet)',
      format: 'nat',
      default: 60,
      env: 'TRANSLATED_LEG_TIMEOUT_SEC',
    },
    drainTimeoutSec: {
      doc: 'On SIGTERM, how long active calls may continue before they are hung up',
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
  log: {
    level: {
      doc: 'Log level',
      format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
      default: 'info',
      env: 'LOG_LEVEL',
    },
  },
} as const;
