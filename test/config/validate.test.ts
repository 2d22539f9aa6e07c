import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, checkConfig, loadConfig } from '../../src/config/load.ts';
import { settings } from '../../src/config/validate.ts';

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

function problems(env: NodeJS.ProcessEnv, file?: string): string[] {
  return checkConfig({ env, file }).errors;
}

describe('strict booleans', () => {
  it.each([
    ['no', false],
    ['0', false],
    ['off', false],
    ['FALSE', false],
    [' Off ', false],
    ['yes', true],
    ['1', true],
    ['ON', true],
    ['true', true],
  ])('TELNYX_STREAM_ON_ANSWER=%j is %s', (text, expected) => {
    expect(loadConfig({ env: { TELNYX_STREAM_ON_ANSWER: text } }).telnyx.streamOnAnswer).toBe(expected);
  });

  it('refuses any other word, naming the env var, the key and the value', () => {
    const [error, ...rest] = problems({ TELNYX_STREAM_ON_ANSWER: 'maybe' });
    expect(rest).toEqual([]);
    expect(error).toContain('TELNYX_STREAM_ON_ANSWER (telnyx.streamOnAnswer)');
    expect(error).toContain('"maybe"');
    expect(error).toMatch(/true or false/);
  });

  it('every boolean setting of the schema uses the strict format', () => {
    const booleans = settings().filter((s) => typeof s.default === 'boolean');
    expect(booleans.length).toBeGreaterThan(0);
    for (const s of booleans) expect(s.format, s.path).toBe('boolean');
  });

  it('reads yes/no in a YAML file too (YAML 1.2 leaves them text)', () => {
    const file = tmpFile('gw.yaml', 'telnyx:\n  streamOnAnswer: yes\n');
    expect(loadConfig({ env: {}, file }).telnyx.streamOnAnswer).toBe(true);
  });
});

describe('every problem of a run, each naming env var and key', () => {
  it('lists a bad port, a bad boolean and a bad URL together', () => {
    let err: unknown;
    try {
      loadConfig({ env: { SIP_PORT: 'abc', TELNYX_STREAM_ON_ANSWER: 'maybe', KALLGLOT_API_URL: 'api.kallglot.com' } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const { problems: list, message } = err as ConfigError;
    expect(list).toHaveLength(3);
    expect(message).toContain('SIP_PORT (sip.port) = "abc"');
    expect(message).toContain('TELNYX_STREAM_ON_ANSWER (telnyx.streamOnAnswer) = "maybe"');
    expect(message).toContain(
      'KALLGLOT_API_URL (kallglot.apiUrl) = "api.kallglot.com": must be an absolute http(s) URL such as https://api.kallglot.com/v1 (no scheme given)',
    );
  });

  it('reads numbers strictly: no "5060abc" read as 5060', () => {
    expect(problems({ SIP_PORT: '5060abc' })[0]).toContain('SIP_PORT (sip.port) = "5060abc"');
    expect(problems({ MAX_CONCURRENT_CALLS: '-1' })[0]).toContain('MAX_CONCURRENT_CALLS (calls.maxConcurrent)');
    expect(problems({ RATE_LIMIT_BUSY_STATUS: '503abc' })[0]).toMatch(/RATE_LIMIT_BUSY_STATUS.*486, 503/);
    expect(loadConfig({ env: { RATE_LIMIT_BUSY_STATUS: '503' } }).calls.busyStatus).toBe(503);
  });

  it('refuses 0 where it would not mean "no limit" but "fail every time"', () => {
    expect(problems({ KALLGLOT_CREATE_DEADLINE_MS: '0' })[0]).toMatch(/KALLGLOT_CREATE_DEADLINE_MS.*1 or more/);
    expect(loadConfig({ env: { MAX_CONCURRENT_CALLS: '0', MAX_CALL_DURATION_SEC: '0' } }).calls.maxConcurrent).toBe(0);
  });

  it('explains what is wrong with a URL', () => {
    expect(problems({ PUBLIC_BASE_URL: 'ftp://gw.example.com' })[0]).toMatch(
      /PUBLIC_BASE_URL \(http\.publicBaseUrl\).*scheme "ftp:" is not http or https/,
    );
    expect(problems({ TELNYX_BASE_URL: 'https://api.telnyx.com/v2?x=1' })[0]).toMatch(
      /TELNYX_BASE_URL \(telnyx\.apiBaseUrl\).*query/,
    );
    expect(problems({ KALLGLOT_API_URL: 'https://api.kallglot.com/v1', KALLGLOT_API_KEY: 'k' })).toEqual([]);
  });

  it('never shows a secret, only that it was set', () => {
    const [error] = problems({ PBX_AUTH_USERS: 'bob:s3cret,alice' });
    expect(error).toContain('PBX_AUTH_USERS (calls.pbxAuthUsers) is set');
    expect(error).not.toContain('s3cret');
  });

  it('names the file and the key of a bad or unknown file setting, with env problems in the same run', () => {
    const file = tmpFile('gw.yaml', 'sip:\n  prot: 5060\n  port: "abc"\nhttp: 5\n');
    const list = problems({ TELNYX_STREAM_ON_ANSWER: 'maybe' }, file);
    expect(list).toHaveLength(4);
    expect(list).toContain(`config file ${file}: unknown key sip.prot (did you mean sip.port?)`);
    expect(list.join('\n')).toContain(`SIP_PORT (sip.port) = "abc" in ${file}`);
    expect(list.join('\n')).toContain(`config file ${file}: http must be a mapping`);
    expect(list.join('\n')).toContain('TELNYX_STREAM_ON_ANSWER');
  });

  it('reports a file that is not valid YAML or JSON', () => {
    const yaml = tmpFile('gw.yaml', 'sip: [\n');
    expect(problems({}, yaml)[0]).toContain(`config file ${yaml} (GATEWAY_CONFIG): not valid YAML`);
    const json = tmpFile('gw.json', '{"sip": ');
    expect(problems({}, json)[0]).toContain(`config file ${json} (GATEWAY_CONFIG): not valid JSON`);
  });
});

describe('Kallglot account or sandbox (fail closed in production)', () => {
  it('runs the sandbox without an account outside production', () => {
    expect(loadConfig({ env: {} }).kallglot.sandbox).toBe(true);
    expect(loadConfig({ env: { NODE_ENV: 'test' } }).kallglot.sandbox).toBe(true);
  });

  it('refuses production without an account unless KALLGLOT_SANDBOX=true', () => {
    const [error, ...rest] = problems({ NODE_ENV: 'production' });
    expect(rest).toEqual([]);
    expect(error).toMatch(/NODE_ENV=production.*set KALLGLOT_API_URL and KALLGLOT_API_KEY.*KALLGLOT_SANDBOX=true/);
    expect(loadConfig({ env: { NODE_ENV: 'production', KALLGLOT_SANDBOX: 'true' } }).kallglot.sandbox).toBe(true);
    const account = { NODE_ENV: 'production', KALLGLOT_API_URL: 'https://api.kallglot.com/v1', KALLGLOT_API_KEY: 'k' };
    expect(loadConfig({ env: account }).kallglot.sandbox).toBe(false);
  });

  it('refuses contradictions and unknown NODE_ENV values', () => {
    expect(
      problems({ KALLGLOT_SANDBOX: 'true', KALLGLOT_API_URL: 'https://api.kallglot.com/v1', KALLGLOT_API_KEY: 'k' })[0],
    ).toMatch(/KALLGLOT_SANDBOX \(kallglot\.sandbox\) is true and KALLGLOT_API_URL/);
    expect(problems({ KALLGLOT_SANDBOX: 'off' })[0]).toMatch(/KALLGLOT_SANDBOX.*is false and KALLGLOT_API_URL/);
    expect(problems({ NODE_ENV: 'prod' })[0]).toMatch(/NODE_ENV \(nodeEnv\) = "prod": must be one of development/);
  });
});

describe('SIP over TLS settings', () => {
  it('accepts tls as a listening transport and toward Telnyx, with 5061 and 30 s keep-alives by default', () => {
    const config = loadConfig({
      env: {
        SIP_TRANSPORTS: 'udp,tcp,tls',
        SIP_TLS_CERT_FILE: '/etc/gw/cert.pem',
        SIP_TLS_KEY_FILE: '/etc/gw/key.pem',
        TELNYX_SIP_TRANSPORT: 'tls',
        TELNYX_TLS_CA_FILE: '/etc/gw/telnyx-ca.pem',
      },
    });
    expect(config.sip).toMatchObject({
      transports: ['udp', 'tcp', 'tls'],
      tlsPort: 5061,
      tlsCertFile: '/etc/gw/cert.pem',
      tlsKeyFile: '/etc/gw/key.pem',
      keepAliveIntervalSec: 30,
    });
    expect(config.telnyx).toMatchObject({ sipTransport: 'tls', tlsCaFile: '/etc/gw/telnyx-ca.pem' });
  });

  it('names the certificate settings missing when tls is listed, and refuses unknown transports', () => {
    expect(problems({ SIP_TRANSPORTS: 'udp,tls' })).toEqual([
      'SIP_TLS_CERT_FILE (sip.tlsCertFile) and SIP_TLS_KEY_FILE (sip.tlsKeyFile) are required when SIP_TRANSPORTS (sip.transports) lists tls',
    ]);
    expect(problems({ SIP_TRANSPORTS: 'tls', SIP_TLS_CERT_FILE: '/c.pem' })).toEqual([
      'SIP_TLS_KEY_FILE (sip.tlsKeyFile) is required when SIP_TRANSPORTS (sip.transports) lists tls',
    ]);
    expect(problems({ SIP_TRANSPORTS: 'udp,wss' })[0]).toMatch(/unknown transport "wss" \(udp, tcp, tls\)/);
    expect(problems({ TELNYX_SIP_TRANSPORT: 'sctp' })[0]).toMatch(/^TELNYX_SIP_TRANSPORT/);
  });
});
