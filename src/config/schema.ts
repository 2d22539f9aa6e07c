/**
 * The one configuration schema of the daemon (convict). Every setting has an env name operators use; a config file
 * (GATEWAY_CONFIG, JSON or YAML) may set the same keys; env overrides file, file overrides defaults.
 */
import './formats.ts'; // registers the named formats used below
import { callsSchema } from './schema-calls.ts';
import { kallglotPoolSchema, overloadSchema } from './schema-performance.ts';
import { telnyxTrunkSchema } from './trunk-schema.ts';

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
      doc: 'SIP transports to listen on, comma separated: udp, tcp, tls (tls listens on SIP_TLS_PORT and needs SIP_TLS_CERT_FILE and SIP_TLS_KEY_FILE)',
      format: 'transport-list',
      default: ['udp', 'tcp'],
      env: 'SIP_TRANSPORTS',
    },
    tlsPort: {
      doc: 'SIP over TLS listen port, when SIP_TRANSPORTS lists tls',
      format: 'port',
      default: 5061,
      env: 'SIP_TLS_PORT',
    },
    tlsCertFile: {
      doc: 'PEM certificate (chain) the TLS listener serves to the PBX; re-read on SIGHUP',
      format: String,
      default: '',
      env: 'SIP_TLS_CERT_FILE',
    },
    tlsKeyFile: {
      doc: 'PEM private key of SIP_TLS_CERT_FILE; re-read on SIGHUP',
      format: String,
      default: '',
      env: 'SIP_TLS_KEY_FILE',
    },
    keepAliveIntervalSec: {
      // RFC 5626 §4.4.1 suggests 95-120 s for TCP; 30 s also outlives the shortest NAT/firewall timeouts seen on TLS.
      doc: 'Seconds of silence after which a TCP/TLS connection the gateway opened (toward Telnyx) gets a CRLF keep-alive ping (RFC 5626); 0: none',
      format: 'nat',
      default: 30,
      env: 'SIP_KEEPALIVE_INTERVAL_SEC',
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
    dnsServers: {
      doc: 'DNS servers for SIP next hops (NAPTR, SRV, A/AAAA), "ip" or "ip:port" ([v6]:port), comma separated; empty: the system resolver',
      format: 'dns-server-list',
      default: [],
      env: 'DNS_SERVERS',
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
    ...kallglotPoolSchema,
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
    targetTimeoutMs: {
      doc: 'How long one Telnyx SBC (one SRV/NAPTR target) may leave an INVITE without any response before the next target is tried; also bounds TELNYX_OUTBOUND_PROXY',
      format: 'positive',
      default: 3000,
      env: 'TELNYX_TARGET_TIMEOUT_MS',
    },
    probeIntervalSec: {
      doc: 'Seconds between OPTIONS probes of each resolved Telnyx target (0: no probing; never with TELNYX_OUTBOUND_PROXY)',
      format: 'nat',
      default: 30,
      env: 'TELNYX_PROBE_INTERVAL_SEC',
    },
    probeFailures: {
      doc: 'Failed OPTIONS probes in a row after which a Telnyx target is skipped until it answers again',
      format: 'positive',
      default: 3,
      env: 'TELNYX_PROBE_FAILURES',
    },
    sipTransport: {
      doc: 'Transport toward Telnyx: udp, tcp or tls (port 5061 unless TELNYX_OUTBOUND_PROXY gives one; a sips: URI template always uses tls)',
      format: ['udp', 'tcp', 'tls'],
      default: 'udp',
      env: 'TELNYX_SIP_TRANSPORT',
    },
    tlsCaFile: {
      doc: 'PEM file of extra CA certificates trusted for TLS toward Telnyx, on top of the system CAs (empty: system CAs only)',
      format: String,
      default: '',
      env: 'TELNYX_TLS_CA_FILE',
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
    ...telnyxTrunkSchema, // tech prefix, number format, CPS and concurrency of `default`; the named trunks
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
    fallbackNotice: { doc: 'Call Control fallback notice', format: String, default: '', env: 'TELNYX_FALLBACK_NOTICE' },
  },
  calls: { ...callsSchema, ...overloadSchema },
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
    url: {
      doc: 'Shared call registry for two or more gateways: postgres://user:password@host:5432/db (empty: SQLite under DATA_DIR, one instance)',
      format: 'registry-url',
      default: '',
      env: 'REGISTRY_URL',
      sensitive: true,
    },
    instanceDeadAfterSec: {
      doc: 'With REGISTRY_URL: seconds after its last lease renewal that an instance counts as dead and a survivor ends its calls',
      format: 'positive',
      default: 15,
      env: 'INSTANCE_DEAD_AFTER_SEC',
    },
    leaseIntervalSec: {
      doc: "With REGISTRY_URL: seconds between two renewals of this instance's lease (and checks for dead instances)",
      format: 'positive',
      default: 3,
      env: 'REGISTRY_LEASE_INTERVAL_SEC',
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
