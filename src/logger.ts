/**
 * The daemon's pino logger. Secrets are redacted at the logger so no call site can leak them by accident.
 * JSON lines carry an ISO `time` and a level name (`"level":"info"`) so a person can read them without a decoder
 * ring; at a terminal the same records go through pino-pretty instead.
 *
 * Redaction is by key name, not by pino's `redact` paths: those (24 wildcard paths) ran a redactor on every key of
 * every line, and were most of the logging cost of a call (docs/benchmarks.md). Here each line's object is walked
 * once (formatters.log, before pino serializes it): a key named like a secret (SECRET_KEYS) at any depth down to
 * SECRET_SEARCH_DEPTH gets its value replaced, and the object is copied only along the path to it. A line of
 * strings and numbers, like the call summary, costs one Set lookup per key. Errors under `err` are redacted after
 * pino's error serializer (their enumerable fields: an HTTP client's error may carry request headers), and a child
 * logger's bindings once, when the child is made.
 */
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';

/** LOG_FORMAT: `auto` is pretty when stdout is a terminal and JSON otherwise (journald, Docker, log shippers). */
export type LogFormatSetting = 'auto' | 'pretty' | 'json';
export type LogFormat = 'pretty' | 'json';

/** The level numbers pino uses internally, by the names the JSON lines carry (for readers that compare levels). */
export const LEVEL_VALUES = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;

/**
 * Keys whose value is a secret wherever it appears: the config's secrets, HTTP and SIP credentials (both header
 * spellings), bearer tokens. Exact names (a Set lookup per key is the whole cost of a line without secrets).
 */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'apiKey',
  'sipPassword',
  'password',
  'adminToken',
  'secret',
  'token',
  'authorization',
  'Authorization',
  'proxy-authorization',
  'Proxy-Authorization',
]);

/** How deep the search goes: a config dump's `config.telnyx.trunks[0].sipPassword` is at depth 5. */
export const SECRET_SEARCH_DEPTH = 6;

/**
 * redactedConfig() already turned each secret into "set" or "unset" so an operator can tell them apart; those two
 * words say nothing about the secret and pass. Any other value at a secret's key is replaced.
 */
function censorSecret(value: unknown): unknown {
  return value === undefined || value === 'set' || value === 'unset' ? value : '[redacted]';
}

/** Walked when it can hold keys JSON would print: not a Buffer or typed array, not a Date or URL (toJSON). */
function walkable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  return !ArrayBuffer.isView(value) && typeof (value as { toJSON?: unknown }).toJSON !== 'function';
}

/** `['Proxy-Authorization', 'Digest …']`: a header of a SIP HeaderList, whose value is a secret. */
function redactHeaderPair(pair: unknown[]): unknown[] {
  return pair.length === 2 &&
    typeof pair[0] === 'string' &&
    SECRET_KEYS.has(pair[0]) &&
    pair[1] !== censorSecret(pair[1])
    ? [pair[0], censorSecret(pair[1])]
    : pair;
}

function redactArray(list: unknown[], depth: number): unknown[] {
  const pair = redactHeaderPair(list);
  if (pair !== list) return pair;
  let copy: unknown[] | undefined;
  for (let i = 0; i < list.length; i++) {
    const value = list[i];
    const clean = depth < SECRET_SEARCH_DEPTH && walkable(value) ? redactAt(value, depth + 1) : value;
    if (clean === value) continue;
    copy ??= list.slice();
    copy[i] = clean;
  }
  return copy ?? list;
}

function redactAt(value: object, depth: number, skipKey?: string): object {
  if (Array.isArray(value)) return redactArray(value, depth);
  const record = value as Record<string, unknown>;
  let copy: Record<string, unknown> | undefined;
  for (const key in record) {
    if (!Object.hasOwn(record, key)) continue; // JSON prints own keys only
    const field = record[key];
    let clean = field;
    if (SECRET_KEYS.has(key)) clean = censorSecret(field);
    else if (key !== skipKey && depth < SECRET_SEARCH_DEPTH && walkable(field)) clean = redactAt(field, depth + 1);
    // A copy (own enumerable keys, as JSON prints them) only on the path to a secret: the caller's object stays.
    if (clean === field) continue;
    copy ??= { ...record };
    copy[key] = clean;
  }
  return copy ?? record;
}

/**
 * `object` with every secret's value replaced (SECRET_KEYS, down to SECRET_SEARCH_DEPTH levels); the same object
 * when it holds none. `skipKey`: a top-level key another step redacts (`err`, after pino's error serializer).
 */
export function redactSecrets<T>(object: T, skipKey?: string): T {
  return walkable(object) ? (redactAt(object, 1, skipKey) as T) : object;
}

/** The caller knows whether stdout is a terminal (main.ts); this module never looks at the process itself. */
export function resolveLogFormat(setting: LogFormatSetting, stdoutIsTty: boolean): LogFormat {
  if (setting === 'auto') return stdoutIsTty ? 'pretty' : 'json';
  return setting;
}

/** pino's own error serializer (type, message, stack, cause, enumerable fields), then the secrets out of it. */
function serializeError(err: unknown): unknown {
  return redactSecrets(pino.stdSerializers.err(err as Error));
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
    formatters: {
      level: (label) => ({ level: label }),
      bindings: (bindings) => redactSecrets(bindings), // the root's (base); children: redactingChildren
      log: (object) => redactSecrets(object, 'err'),
    },
    serializers: { err: serializeError },
  };
  if (format === 'pretty') {
    const stream = pretty({
      sync: true,
      destination: destination ?? 1,
      ignore: 'svc,component',
      messageFormat: '{if component}[{component}] {end}{msg}',
    });
    return redactingChildren(pino(options, stream));
  }
  return redactingChildren(pino(options, destination));
}

/**
 * pino serializes a child's bindings once, when the child is made, and applies formatters.bindings to the root's
 * only: children get their bindings redacted here. Set on the root, the method is inherited by every descendant
 * (pino makes a child with Object.create(parent)).
 */
function redactingChildren(root: Logger): Logger {
  const makeChild = root.child as unknown as (
    this: Logger,
    bindings: pino.Bindings,
    options?: pino.ChildLoggerOptions,
  ) => Logger;
  root.child = function child(this: Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions) {
    return makeChild.call(this, redactSecrets(bindings), childOptions);
  } as unknown as Logger['child'];
  return root;
}

type LevelName = keyof typeof LEVEL_VALUES;

/** The log methods the call logic writes with: a pino Logger has them, and so has a LazyChildLogger. */
export type LineLogger = Record<LevelName, (objectOrMessage: unknown, message?: string) => void>;

/**
 * A child logger made on its first line at an enabled level. Every call gets one, bound to its callId, but at info a
 * normal call writes no line of its own (its summary is written by the call manager), and pino's child() (copying
 * the instance, serializing the bindings) was a measurable share of a call's CPU: a call that logs nothing pays
 * for nothing, one that does pays once.
 */
export class LazyChildLogger implements LineLogger {
  readonly #parent: Logger;
  #bindings: Record<string, unknown>;
  #child: Logger | undefined;

  constructor(parent: Logger, bindings: Record<string, unknown>) {
    this.#parent = parent;
    this.#bindings = bindings;
  }

  /** Bind more keys from now on (a call's sessionId, once it has one): lines already written keep what they had. */
  bind(more: Record<string, unknown>): void {
    if (this.#child) this.#child = this.#child.child(more);
    else this.#bindings = { ...this.#bindings, ...more };
  }

  trace(objectOrMessage: unknown, message?: string): void {
    this.#write('trace', objectOrMessage, message);
  }

  debug(objectOrMessage: unknown, message?: string): void {
    this.#write('debug', objectOrMessage, message);
  }

  info(objectOrMessage: unknown, message?: string): void {
    this.#write('info', objectOrMessage, message);
  }

  warn(objectOrMessage: unknown, message?: string): void {
    this.#write('warn', objectOrMessage, message);
  }

  error(objectOrMessage: unknown, message?: string): void {
    this.#write('error', objectOrMessage, message);
  }

  fatal(objectOrMessage: unknown, message?: string): void {
    this.#write('fatal', objectOrMessage, message);
  }

  #write(level: LevelName, objectOrMessage: unknown, message: string | undefined): void {
    if (!this.#parent.isLevelEnabled(level)) return;
    this.#child ??= this.#parent.child(this.#bindings);
    if (message === undefined) this.#child[level](objectOrMessage as string);
    else this.#child[level](objectOrMessage, message);
  }
}

/** A logger that writes nothing: the default of components whose caller passed none (tests, tools). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

export type { Logger };
