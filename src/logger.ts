/**
 * The daemon's pino logger. Secrets are redacted at the logger so no call site can leak them by accident.
 * JSON lines carry an ISO `time` and a level name (`"level":"info"`) so a person can read them without a decoder
 * ring; at a terminal the same records go through pino-pretty instead.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/** LOG_FORMAT: `auto` is pretty when stdout is a terminal and JSON otherwise (journald, Docker, log shippers). */
export type LogFormatSetting = 'auto' | 'pretty' | 'json';
export type LogFormat = 'pretty' | 'json';

/** The level numbers pino uses internally, by the names the JSON lines carry (for readers that compare levels). */
export const LEVEL_VALUES = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'sipPassword',
  '*.sipPassword',
  '*.*.sipPassword',
  'password',
  '*.password',
  '*.*.password',
  'adminToken',
  '*.adminToken',
  '*.*.adminToken',
  'secret',
  '*.secret',
  '*.*.secret',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'headers["proxy-authorization"]',
  '*.headers["proxy-authorization"]',
  'token',
  '*.token',
  '*.stream.token',
];

/**
 * redactedConfig() already turned each secret into "set" or "unset" so an operator can tell them apart; those two
 * words say nothing about the secret and pass. Any other value at a secret's path is replaced.
 */
function censorSecret(value: unknown): unknown {
  return value === 'set' || value === 'unset' ? value : '[redacted]';
}

/** The caller knows whether stdout is a terminal (main.ts); this module never looks at the process itself. */
export function resolveLogFormat(setting: LogFormatSetting, stdoutIsTty: boolean): LogFormat {
  if (setting === 'auto') return stdoutIsTty ? 'pretty' : 'json';
  return setting;
}

/**
 * Lines go to `destination` (tests), stdout without one. Pretty output is pino-pretty as a stream in this thread,
 * writing synchronously, not a worker transport: the lines written before process.exit() are out when it ends.
 */
export function createLogger(level: string, destination?: pino.DestinationStream, format: LogFormat = 'json'): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { svc: 'kallglot-sip-gateway' },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: censorSecret },
  };
  if (format === 'pretty') {
    const stream = pretty({
      sync: true,
      destination: destination ?? 1,
      ignore: 'svc,component',
      messageFormat: '{if component}[{component}] {end}{msg}',
    });
    return pino(options, stream);
  }
  return pino(options, destination);
}

/** A logger that writes nothing: the default of components whose caller passed none (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
