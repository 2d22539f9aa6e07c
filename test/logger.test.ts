/**
 * The daemon's logger: JSON lines with an ISO time and a level name, pino-pretty at a terminal, and secrets
 * removed in both.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, LEVEL_VALUES, type LogFormat, resolveLogFormat } from '../src/logger.ts';

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

describe('resolveLogFormat', () => {
  it('auto: pretty at a terminal, JSON otherwise; an explicit format wins either way', () => {
    expect(resolveLogFormat('auto', true)).toBe('pretty');
    expect(resolveLogFormat('auto', false)).toBe('json');
    expect(resolveLogFormat('json', true)).toBe('json');
    expect(resolveLogFormat('pretty', false)).toBe('pretty');
  });
});
