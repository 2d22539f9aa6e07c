/**
 * Load and validate the configuration once at start-up. Every problem of a run is reported at once, each naming the
 * env var and the file key (validate.ts). The rest of the code receives the typed GatewayConfig and never reads
 * process.env.
 */
import os from 'node:os';
import { publicAddresses } from './public-address.ts';
import { type NumberFormat, parseTrunks, redactedTrunk, type TelnyxTrunk } from './trunks.ts';
import { type SettingValue, validateConfig } from './validate.ts';

export interface GatewayConfig {
  sip: {
    engine: 'embedded' | 'drachtio';
    host: string;
    port: number;
    transports: Array<'udp' | 'tcp' | 'tls'>;
    tlsPort: number;
    tlsCertFile: string;
    tlsKeyFile: string;
    keepAliveIntervalSec: number;
    /** Resolved (public-address.ts): written in Via/Contact, toward IPv4 peers when publicAddress6 is set. */
    publicAddress: string;
    /** Written toward IPv6 peers by a dual-stack gateway; unset: publicAddress toward every peer. */
    publicAddress6?: string;
    maxMessageSize: number;
    userAgent: string;
    /** DNS_SERVERS: `ip` / `ip:port` / `[v6]:port` for SIP next-hop lookups; empty: the system resolver. */
    dnsServers: string[];
  };
  drachtio: { host: string; port: number; secret: string };
  http: { host: string; port: number; adminToken: string; publicBaseUrl: string };
  kallglot: {
    apiUrl: string;
    apiKey: string;
    /** Resolved: true when the local sandbox runs instead of a Kallglot account (never in production unless asked). */
    sandbox: boolean;
    requestTimeoutMs: number;
    retries: number;
    createDeadlineMs: number;
    endDeadlineMs: number;
    /** Which documented shape the create-session request takes (the docs disagree; see kallglot/types.ts). */
    requestStyle: 'routing' | 'provider';
    /** Per pool (creates; ends and gets); 0: derived from the rate limit (kallglot/pool.ts). */
    poolConnections: number;
    http2: boolean;
    /** The CreateResolver's first wait before re-sending a create of unknown outcome (its backoff doubles from it). */
    createResolveDelayMs: number;
  };
  telnyx: {
    sipDomain: string;
    outboundProxy: string;
    /** Silence allowed per SRV/NAPTR target before the next is tried (ms). */
    targetTimeoutMs: number;
    /** OPTIONS probing of the resolved targets: interval (0: off) and failures in a row that take one out. */
    probeIntervalSec: number;
    probeFailures: number;
    sipTransport: 'udp' | 'tcp' | 'tls';
    tlsCaFile: string;
    sipUsername: string;
    sipPassword: string;
    translatedUriTemplate: string;
    directUriTemplate: string;
    /** The `default` trunk's tech prefix, number format and limits (the top-level settings form it; trunks.ts). */
    techPrefix: string;
    numberFormat: NumberFormat;
    maxCallsPerSecond: number;
    maxConcurrent: number;
    /** The config file's named Telnyx trunks, passwords read (`allTrunks()` puts `default` first). */
    trunks: TelnyxTrunk[];
    apiKey: string;
    publicKey: string;
    connectionId: string;
    apiBaseUrl: string;
    webhookToleranceSec: number;
    directNumber: string;
    streamOnAnswer: boolean;
    fallbackNotice: string;
  };
  calls: {
    allowedSources: string[];
    pbxAuthUsers: string[];
    pbxAuthRealm: string;
    maxConcurrent: number;
    maxCallsPerSecond: number;
    maxConcurrentPerSource: number;
    maxCallsPerSecondPerSource: number;
    rateLimitPolicy: 'fallback' | 'busy';
    busyStatus: 486 | 503;
    telnyxAllowedSources: string[];
    pbxUriTemplate: string;
    pbxOutboundProxy: string;
    redirectPolicy: 'follow' | 'relay';
    redirectAllowedDomains: string[];
    referPolicy: 'relay' | 'reject';
    translatedLegTimeoutSec: number;
    maxCallDurationSec: number;
    drainTimeoutSec: number;
    /** Admission refuses while the event loop lags more than this (ms); 0: never. */
    overloadLagMs: number;
    /** Admission refuses while the event loop is busy more than this percent of the time; 0: never. */
    overloadBusyPercent: number;
    /** Admission refuses while this many calls are admitted but not yet answered or failed; 0: no bound. */
    maxInflightSetups: number;
  };
  routing: { file: string };
  nodeEnv: 'development' | 'production' | 'test';
  dataDir: string;
  instanceId: string;
  registry: {
    retentionDays: number;
    /** Empty: SQLite under dataDir. Carries a password: never logged (redactedConfig, describeRegistry). */
    url: string;
    instanceDeadAfterSec: number;
    leaseIntervalSec: number;
  };
  log: { level: string; format: 'auto' | 'pretty' | 'json' };
}

/** Every configuration problem of one run; `message` lists them all, one a line. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];
  constructor(problems: string[]) {
    const head =
      problems.length === 1 ? 'invalid configuration:' : `invalid configuration (${problems.length} problems):`;
    super([head, ...problems.map((p) => `  - ${p}`)].join('\n'));
    this.problems = problems;
  }
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Config file (JSON or YAML); defaults to env GATEWAY_CONFIG. */
  file?: string;
}

export interface CheckedConfig {
  /** Present when there are no errors. */
  config?: GatewayConfig;
  /** Every setting with its value and where it came from (default, env, file). */
  values: SettingValue[];
  errors: string[];
  /** The config file read (GATEWAY_CONFIG), if any. */
  file?: string;
}

/** Validate without throwing: what `kallglot-gw --check` reports. */
export function checkConfig(opts: LoadConfigOptions = {}): CheckedConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? (env.GATEWAY_CONFIG || undefined);
  const { properties, values, errors } = validateConfig(env, file);
  // Reported with the rest, each naming its file key (telnyx.trunks[1].sipDomain); trunks.ts reads sipPasswordEnv.
  const trunks = parseTrunks(values.find((v) => v.setting.path === 'telnyx.trunks')?.value, env, file);
  errors.push(...trunks.errors);
  if (errors.length > 0) return { values, errors, file };
  const config = properties as GatewayConfig;
  config.telnyx.trunks = trunks.trunks;
  Object.assign(config.sip, publicAddresses(config.sip.publicAddress, config.sip.host));
  if (!config.instanceId) config.instanceId = `${os.hostname()}:${config.sip.port}`;
  // Without an account the sandbox is the development default; in production validateConfig refused that above.
  if (!config.kallglot.apiUrl) config.kallglot.sandbox = true;
  return { config, values, errors, file };
}

export function loadConfig(opts: LoadConfigOptions = {}): GatewayConfig {
  const { config, errors } = checkConfig(opts);
  if (!config) throw new ConfigError(errors);
  return config;
}

/**
 * A copy of the config safe to log: every secret replaced by "set" or "unset", so an operator reading the start-up
 * lines can tell a missing key from a present one without the value ever reaching a log.
 */
export function redactedConfig(config: GatewayConfig): GatewayConfig {
  const copy = structuredClone(config);
  const hide = (v: string): string => (v ? 'set' : 'unset');
  copy.kallglot.apiKey = hide(copy.kallglot.apiKey);
  copy.telnyx.sipPassword = hide(copy.telnyx.sipPassword);
  copy.telnyx.apiKey = hide(copy.telnyx.apiKey);
  copy.telnyx.trunks = copy.telnyx.trunks.map(redactedTrunk);
  copy.http.adminToken = hide(copy.http.adminToken);
  copy.drachtio.secret = hide(copy.drachtio.secret);
  copy.registry.url = hide(copy.registry.url);
  copy.calls.pbxAuthUsers = copy.calls.pbxAuthUsers.map((e) => `${e.split(':')[0]}:[redacted]`);
  return copy;
}
