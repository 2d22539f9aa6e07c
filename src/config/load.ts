/**
 * Load and validate the configuration once at start-up. Errors name the offending key (convict's messages do) and,
 * for a config file, the file. The rest of the code receives the typed GatewayConfig and never reads process.env.
 */
import os from 'node:os';
import convict from 'convict';
import YAML from 'yaml';
import { schema } from './schema.ts';

convict.addParser({ extension: ['yml', 'yaml'], parse: (text: string) => YAML.parse(text) });
convict.addParser({ extension: 'json', parse: (text: string) => JSON.parse(text) });

export interface GatewayConfig {
  sip: {
    engine: 'embedded' | 'drachtio';
    host: string;
    port: number;
    transports: Array<'udp' | 'tcp'>;
    publicAddress: string;
    maxMessageSize: number;
    userAgent: string;
  };
  drachtio: { host: string; port: number; secret: string };
  http: { host: string; port: number; adminToken: string; publicBaseUrl: string };
  kallglot: {
    apiUrl: string;
    apiKey: string;
    requestTimeoutMs: number;
    retries: number;
    createDeadlineMs: number;
    endDeadlineMs: number;
  };
  telnyx: {
    sipDomain: string;
    outboundProxy: string;
    sipTransport: 'udp' | 'tcp';
    sipUsername: string;
    sipPassword: string;
    translatedUriTemplate: string;
    directUriTemplate: string;
    apiKey: string;
    publicKey: string;
    connectionId: string;
    apiBaseUrl: string;
    webhookToleranceSec: number;
    directNumber: string;
    streamOnAnswer: boolean;
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
    translatedLegTimeoutSec: number;
    maxCallDurationSec: number;
    drainTimeoutSec: number;
  };
  routing: { file: string };
  dataDir: string;
  instanceId: string;
  log: { level: string };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Config file (JSON or YAML); defaults to env GATEWAY_CONFIG. */
  file?: string;
}

export function loadConfig(opts: LoadConfigOptions = {}): GatewayConfig {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.GATEWAY_CONFIG;
  const conf = convict(schema as unknown as convict.Schema<GatewayConfig>, { env, args: [] });
  if (file) {
    try {
      conf.loadFile(file);
    } catch (err) {
      throw new ConfigError(`config file ${file}: ${(err as Error).message}`);
    }
    // Env overrides file: convict applies env at construction, loadFile then overwrites, so re-apply env values.
    const envOnly = convict(schema as unknown as convict.Schema<GatewayConfig>, { env, args: [] });
    for (const key of envKeys(schema)) {
      if (env[key.env] !== undefined) conf.set(key.path as never, envOnly.get(key.path as never) as never);
    }
  }
  try {
    conf.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration${file ? ` (file ${file})` : ''}: ${(err as Error).message}`);
  }
  const config = conf.getProperties() as GatewayConfig;
  if (!config.sip.publicAddress) config.sip.publicAddress = defaultPublicAddress(config.sip.host);
  if (!config.instanceId) config.instanceId = `${os.hostname()}:${config.sip.port}`;
  if (config.telnyx.sipUsername && !config.telnyx.sipPassword) {
    throw new ConfigError(
      'invalid configuration: telnyx.sipPassword (TELNYX_SIP_PASSWORD) is required when telnyx.sipUsername is set',
    );
  }
  if (config.kallglot.apiUrl && !config.kallglot.apiKey) {
    throw new ConfigError(
      'invalid configuration: kallglot.apiKey (KALLGLOT_API_KEY) is required when kallglot.apiUrl is set',
    );
  }
  return config;
}

function envKeys(node: object, prefix = ''): Array<{ path: string; env: string }> {
  const out: Array<{ path: string; env: string }> = [];
  for (const [k, v] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${k}` : k;
    if (v && typeof v === 'object' && 'default' in v) {
      if ('env' in v && typeof v.env === 'string') out.push({ path, env: v.env });
    } else if (v && typeof v === 'object') out.push(...envKeys(v, path));
  }
  return out;
}

function defaultPublicAddress(host: string): string {
  if (host !== '0.0.0.0' && host !== '::') return host;
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}

/** A copy of the config safe to log: every sensitive value replaced. */
export function redactedConfig(config: GatewayConfig): GatewayConfig {
  const copy = structuredClone(config);
  const hide = (v: string): string => (v ? '[redacted]' : '');
  copy.kallglot.apiKey = hide(copy.kallglot.apiKey);
  copy.telnyx.sipPassword = hide(copy.telnyx.sipPassword);
  copy.telnyx.apiKey = hide(copy.telnyx.apiKey);
  copy.http.adminToken = hide(copy.http.adminToken);
  copy.drachtio.secret = hide(copy.drachtio.secret);
  copy.calls.pbxAuthUsers = copy.calls.pbxAuthUsers.map((e) => `${e.split(':')[0]}:[redacted]`);
  return copy;
}
