/** The daemon's pino logger. Secrets are redacted at the logger so no call site can leak them by accident. */
import { pino, type Logger } from 'pino';

export const REDACT_PATHS = [
  'apiKey',
  '*.apiKey',
  '*.*.apiKey',
  'sipPassword',
  '*.sipPassword',
  '*.*.sipPassword',
  'password',
  '*.password',
  'adminToken',
  '*.adminToken',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  '*.headers.authorization',
  'headers["proxy-authorization"]',
  '*.headers["proxy-authorization"]',
  'token',
  '*.token',
  '*.stream.token',
];

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    { level, base: { svc: 'kallglot-sip-gateway' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } },
    destination,
  );
}

/** A logger that writes nothing: the default of components whose caller passed none (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
