import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/logger.ts';

const tmpDirs: string[] = [];
function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-config-'));
  tmpDirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('loadConfig', () => {
  it('gives the documented defaults with an empty environment', () => {
    const c = loadConfig({ env: {} });
    expect(c.sip.port).toBe(5060);
    expect(c.sip.transports).toEqual(['udp', 'tcp']);
    expect(c.http.port).toBe(8080);
    expect(c.telnyx.sipDomain).toBe('sip.telnyx.com');
    expect(c.kallglot.createDeadlineMs).toBeLessThanOrEqual(2000);
    expect(c.routing.file).toBe('config/routing.yaml');
    expect(c.calls.rateLimitPolicy).toBe('fallback');
  });

  it('reads env names operators use', () => {
    const c = loadConfig({
      env: {
        SIP_PORT: '5070',
        SIP_TRANSPORTS: 'tcp',
        HTTP_PORT: '9000',
        TELNYX_OUTBOUND_PROXY: '127.0.0.1:5080',
        KALLGLOT_API_URL: 'http://x/v1',
        KALLGLOT_API_KEY: 'sk_test_1',
        PBX_ALLOWED_SOURCES: '10.0.0.0/8, 192.168.1.5',
      },
    });
    expect(c.sip.port).toBe(5070);
    expect(c.sip.transports).toEqual(['tcp']);
    expect(c.http.port).toBe(9000);
    expect(c.telnyx.outboundProxy).toBe('127.0.0.1:5080');
    expect(c.kallglot.apiKey).toBe('sk_test_1');
    expect(c.calls.allowedSources).toEqual(['10.0.0.0/8', '192.168.1.5']);
  });

  it('layers defaults < file < env', () => {
    const file = tmpFile('gw.yaml', 'sip:\n  port: 5090\nhttp:\n  port: 9100\n');
    const c = loadConfig({ env: { HTTP_PORT: '9200' }, file });
    expect(c.sip.port).toBe(5090);
    expect(c.http.port).toBe(9200);
  });

  it('KALLGLOT_REQUEST_STYLE: routing by default, provider when asked, nothing else', () => {
    expect(loadConfig({ env: {} }).kallglot.requestStyle).toBe('routing');
    expect(loadConfig({ env: { KALLGLOT_REQUEST_STYLE: 'provider' } }).kallglot.requestStyle).toBe('provider');
    const file = tmpFile('gw.yaml', 'kallglot:\n  requestStyle: provider\n');
    expect(loadConfig({ env: {}, file }).kallglot.requestStyle).toBe('provider');
    expect(() => loadConfig({ env: { KALLGLOT_REQUEST_STYLE: 'seed' } })).toThrow(
      /KALLGLOT_REQUEST_STYLE \(kallglot\.requestStyle\) = "seed": must be one of routing, provider/,
    );
  });

  it('rejects a bad port naming the key', () => {
    expect(() => loadConfig({ env: { SIP_PORT: '70000' } })).toThrow(/sip\.port/);
  });

  it('rejects an unknown key in the config file naming it and the file', () => {
    const file = tmpFile('gw.json', JSON.stringify({ sip: { prot: 5060 } }));
    let err: unknown;
    try {
      loadConfig({ env: {}, file });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).toMatch(/sip\.prot/);
    expect(String(err)).toContain(file);
  });

  it('rejects a wrong type and an unknown transport', () => {
    expect(() => loadConfig({ env: { SIP_TRANSPORTS: 'udp,sctp' } })).toThrow(/sip\.transports/);
    expect(() => loadConfig({ env: { MAX_CONCURRENT_CALLS: 'lots' } })).toThrow(/calls\.maxConcurrent/);
    expect(() => loadConfig({ env: { PBX_ALLOWED_SOURCES: '10.0.0.0/33' } })).toThrow(/calls\.allowedSources/);
  });

  it('rejects an unreadable config file naming it', () => {
    expect(() => loadConfig({ env: {}, file: '/nonexistent/gw.yaml' })).toThrow(/\/nonexistent\/gw\.yaml/);
  });

  it('requires a password with a Telnyx SIP username and a key with a Kallglot URL', () => {
    expect(() => loadConfig({ env: { TELNYX_SIP_USERNAME: 'u' } })).toThrow(/TELNYX_SIP_PASSWORD/);
    expect(() => loadConfig({ env: { KALLGLOT_API_URL: 'https://api.kallglot.com/v1' } })).toThrow(/KALLGLOT_API_KEY/);
  });

  it('never lets secrets reach a log line', () => {
    const c = loadConfig({
      env: {
        KALLGLOT_API_URL: 'http://x/v1',
        KALLGLOT_API_KEY: 'sk_live_SECRET1',
        TELNYX_SIP_USERNAME: 'u',
        TELNYX_SIP_PASSWORD: 'pw-SECRET2',
        TELNYX_API_KEY: 'KEY-SECRET3',
      },
    });
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    });
    const log = createLogger('info', sink);
    log.info({ config: c }, 'raw config object');
    log.info({ config: redactedConfig(c) }, 'redacted copy');
    log.info({ kallglot: { apiKey: 'sk_live_SECRET4' }, authorization: 'Bearer SECRET5' }, 'ad hoc');
    expect(out).toContain('raw config object');
    for (const s of ['SECRET1', 'SECRET2', 'SECRET3', 'SECRET4', 'SECRET5']) expect(out).not.toContain(s);
  });

  it('reads PBX digest users from PBX_AUTH_USERS and never shows their passwords', () => {
    const c = loadConfig({ env: { PBX_AUTH_USERS: 'alice:s3cret' } });
    expect(c.calls.pbxAuthUsers).toEqual(['alice:s3cret']);
    expect(c.calls.pbxAuthRealm).toBe('kallglot-gateway');
    expect(loadConfig({ env: {} }).calls.pbxAuthUsers).toEqual([]);

    // The error names the key, and (sensitive key) not the value: a valid entry next to the bad one stays hidden.
    expect(() => loadConfig({ env: { PBX_AUTH_USERS: 'alice' } })).toThrow(/calls\.pbxAuthUsers/);
    let err: unknown;
    try {
      loadConfig({ env: { PBX_AUTH_USERS: 'bob:s3cret,alice' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect(String(err)).toMatch(/calls\.pbxAuthUsers/);
    expect(String(err)).not.toContain('s3cret');

    const redacted = redactedConfig(c);
    expect(redacted.calls.pbxAuthUsers).toEqual(['alice:[redacted]']);
    expect(JSON.stringify(redacted)).not.toContain('s3cret');
    expect(c.calls.pbxAuthUsers).toEqual(['alice:s3cret']); // a copy: the running config keeps the password
    let out = '';
    const sink = new Writable({
      write(chunk, _enc, cb) {
        out += String(chunk);
        cb();
      },
    });
    createLogger('info', sink).info({ config: redacted }, 'config');
    expect(out).toContain('alice:[redacted]');
    expect(out).not.toContain('s3cret');
  });
});
