/**
 * The daemon's logger: JSON lines with an ISO time and a level name, pino-pretty at a terminal, and secrets
 * removed in both.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { pino } from 'pino';
import {
  createLogger,
  LazyChildLogger,
  LEVEL_VALUES,
  type LogFormat,
  redactSecrets,
  resolveLogFormat,
} from '../src/logger.ts';

function sink(): { out: () => string; stream: Writable } {
  let text = '';
  const stream = new Writable({
    write(chunk, _enc, cb) {
      text += String(chunk);
      cb();
    },
  });
  return { out: () => text, stream };
}

function write(format: LogFormat): string {
  const s = sink();
  const log = createLogger('debug', s.stream, format).child({ component: 'sip' });
  log.info({ callId: 'c-1', kallglot: { apiKey: 'sk_live_SECRET1' } }, 'call started');
  log.warn({ authorization: 'Bearer SECRET2', token: 'SECRET3' }, 'careful');
  log.trace('below the level');
  return s.out();
}

describe('createLogger', () => {
  it('JSON: one object a line, ISO time, the level by name, secrets redacted', () => {
    const lines = write('json')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    const [info, warn] = lines;
    expect(info).toMatchObject({ level: 'info', msg: 'call started', callId: 'c-1', component: 'sip' });
    expect(warn).toMatchObject({ level: 'warn', msg: 'careful', authorization: '[redacted]' });
    for (const l of lines) {
      expect(l.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(l.time as string) - Date.now())).toBeLessThan(60_000);
    }
    expect(JSON.stringify(lines)).not.toMatch(/SECRET/);
  });

  it('pretty: readable text, not JSON, with the component, the message and the fields; secrets redacted', () => {
    // biome-ignore lint/suspicious/noControlCharactersInRegex: strips the ANSI colours pino-pretty may add
    const text = write('pretty').replace(/\u001b\[[0-9;]*m/g, '');
    const lines = text.split('\n').filter(Boolean);
    expect(() => JSON.parse(lines[0] ?? '')).toThrow();
    expect(text).toMatch(/INFO.*\[sip\] call started/);
    expect(text).toMatch(/WARN.*\[sip\] careful/);
    expect(text).toMatch(/callId: "c-1"/);
    expect(text).not.toMatch(/below the level/);
    expect(text).not.toMatch(/SECRET/);
    expect(text).toContain('[redacted]');
  });

  it('secrets nested in a config object are removed; the set/unset of redactedConfig() stay readable', () => {
    const s = sink();
    const raw = {
      http: { adminToken: 'SECRET4' },
      drachtio: { secret: 'SECRET5' },
      telnyx: { sipPassword: 'SECRET6', apiKey: 'unset' },
    };
    const redacted = { kallglot: { apiKey: 'set' }, telnyx: { sipPassword: 'unset' }, http: { adminToken: 'set' } };
    createLogger('info', s.stream).info({ config: raw, redacted }, 'config');
    const line = JSON.parse(s.out()) as { config: typeof raw; redacted: typeof redacted };
    expect(s.out()).not.toMatch(/SECRET/);
    expect(line.config).toEqual({
      http: { adminToken: '[redacted]' },
      drachtio: { secret: '[redacted]' },
      telnyx: { sipPassword: '[redacted]', apiKey: 'unset' },
    });
    expect(line.redacted).toEqual(redacted);
  });

  it('LEVEL_VALUES are the numbers pino orders levels by', () => {
    const log = createLogger('info');
    for (const [name, value] of Object.entries(LEVEL_VALUES)) expect(log.levels.values[name]).toBe(value);
  });
});

describe('redaction by key name (no pino redact paths: issue 14)', () => {
  function line(obj: object, bindings: Record<string, unknown> = {}): { text: string; json: Record<string, unknown> } {
    const s = sink();
    createLogger('info', s.stream).child(bindings).info(obj, 'x');
    return { text: s.out(), json: JSON.parse(s.out()) as Record<string, unknown> };
  }

  it('finds secrets at any depth down to 6 levels, in arrays, and in SIP header pairs of any spelling', () => {
    const config = { telnyx: { trunks: [{ name: 'eu', sipPassword: 'SECRET1' }] }, registry: { password: 'SECRET2' } };
    const headers = [
      ['Proxy-Authorization', 'Digest response="SECRET3"'],
      ['Via', 'SIP/2.0/UDP 192.0.2.1'],
    ];
    const http = { req: { headers: { authorization: 'Bearer SECRET4', Authorization: 'Bearer SECRET5' } } };
    const { text, json } = line({ config, headers, http, a: { b: { c: { d: { token: 'SECRET6' } } } } });
    expect(text).not.toMatch(/SECRET/);
    expect(json.config).toEqual({
      telnyx: { trunks: [{ name: 'eu', sipPassword: '[redacted]' }] },
      registry: { password: '[redacted]' },
    });
    expect(json.headers).toEqual([
      ['Proxy-Authorization', '[redacted]'],
      ['Via', 'SIP/2.0/UDP 192.0.2.1'],
    ]);
  });

  it('errors: their enumerable fields (an HTTP client error carrying request headers) are redacted too', () => {
    const err = Object.assign(new Error('boom'), { code: 'E1', request: { headers: { authorization: 'SECRET7' } } });
    const { text, json } = line({ err, callId: 'c-1' });
    expect(text).not.toMatch(/SECRET/);
    expect(json.err).toMatchObject({
      type: 'Error',
      message: 'boom',
      code: 'E1',
      stack: expect.stringContaining('boom'),
    });
  });

  it('child bindings are redacted once, when the child is made', () => {
    const { text, json } = line({ callId: 'c-1' }, { apiKey: 'SECRET8', component: 'kallglot' });
    expect(text).not.toMatch(/SECRET/);
    expect(json).toMatchObject({ apiKey: '[redacted]', component: 'kallglot', callId: 'c-1' });
  });

  it("leaves the caller's objects alone and copies nothing when there is no secret", () => {
    const clean = { callId: 'c-1', route: 'translated', nested: { status: 200 }, list: [1, 2] };
    expect(redactSecrets(clean)).toBe(clean);
    const dirty = { callId: 'c-1', kallglot: { apiKey: 'k' }, other: { a: 1 } };
    const out = redactSecrets(dirty);
    expect(out).toEqual({ callId: 'c-1', kallglot: { apiKey: '[redacted]' }, other: { a: 1 } });
    expect(dirty.kallglot.apiKey).toBe('k');
    expect(out.other).toBe(dirty.other); // only the path to the secret is copied
  });

  it('does not walk Buffers or Dates, and stops at the depth limit (cycles cannot loop)', () => {
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    const body = Buffer.from('token=abc');
    const when = new Date(0);
    const input = { body, when, cyclic };
    expect(redactSecrets(input)).toBe(input);
  });
});

describe('LazyChildLogger', () => {
  function setup(level: string): { parent: pino.Logger; children: () => number; out: () => string } {
    const s = sink();
    const parent = createLogger(level, s.stream);
    let made = 0;
    const makeChild = parent.child;
    // Own property of the root, inherited by its children (as the logger's own wrapper is): `this` is the parent.
    parent.child = function child(this: pino.Logger, ...args: Parameters<pino.Logger['child']>) {
      made++;
      return makeChild.apply(this, args);
    } as pino.Logger['child'];
    return { parent, children: () => made, out: s.out };
  }

  it('makes no pino child while nothing it writes is enabled', () => {
    const { parent, children, out } = setup('info');
    const log = new LazyChildLogger(parent, { callId: 'c-1' });
    log.debug('not written');
    log.bind({ sessionId: 's-1' });
    log.trace({ a: 1 }, 'not written either');
    expect(children()).toBe(0);
    expect(out()).toBe('');
  });

  it('makes one child on the first enabled line, with every binding so far; later bindings apply from then on', () => {
    const { parent, children, out } = setup('debug');
    const log = new LazyChildLogger(parent, { callId: 'c-1' });
    log.bind({ sessionId: 's-1' });
    log.debug('first');
    log.info({ route: 'translated' }, 'second');
    expect(children()).toBe(1);
    log.bind({ leg: 'telnyx' });
    log.warn('third');
    const lines = out()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ level: 'debug', msg: 'first', callId: 'c-1', sessionId: 's-1' });
    expect(lines[0]).not.toHaveProperty('leg');
    expect(lines[1]).toMatchObject({ level: 'info', msg: 'second', route: 'translated', callId: 'c-1' });
    expect(lines[2]).toMatchObject({ level: 'warn', msg: 'third', callId: 'c-1', sessionId: 's-1', leg: 'telnyx' });
  });

  it('an Error as the first argument is logged as err, like pino', () => {
    const { parent, out } = setup('info');
    new LazyChildLogger(parent, { callId: 'c-1' }).error(new Error('bad'), 'failed');
    expect(JSON.parse(out())).toMatchObject({ msg: 'failed', err: { message: 'bad' }, callId: 'c-1' });
  });
});

describe('resolveLogFormat', () => {
  it('auto: pretty at a terminal, JSON otherwise; an explicit format wins either way', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });
});
