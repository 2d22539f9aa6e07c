/**
 * Telnyx trunks in the config: the top-level TELNYX_* settings form `default`, `telnyx.trunks` in the config file adds
 * named ones; every problem names its file key, passwords may come from an env var the file names, and no secret
 * ever reaches an error, --check or the redacted config.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.ts';
import { checkConfig, loadConfig, redactedConfig } from '../../src/config/load.ts';
import { allTrunks, parseTrunks } from '../../src/config/trunks.ts';
import { captureIo } from '../cli/io.ts';

const dirs: string[] = [];
function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-trunks-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const TWO_TRUNKS = `telnyx:
  trunks:
    - name: eu
      sipDomain: sip-eu.telnyx.com
      outboundProxy: 127.0.0.1:5091
      sipTransport: tcp
      sipUsername: eu-user
      sipPasswordEnv: TELNYX_TRUNK_EU_PASSWORD
      translatedUriTemplate: "sip:{session_id}@{domain};eu=1"
      numberFormat: { countryCode: 49, nationalPrefix: "0" }
      maxCallsPerSecond: 5
      maxConcurrent: 30
    - name: us-ip
      sipDomain: sip.telnyx.com
      techPrefix: "7788#"
      numberFormat: { countryCode: "1", nationalPrefix: "1", internationalPrefix: "011" }
`;

describe('Telnyx trunks in the config', () => {
  it('the top-level settings form `default`, with Telnyx CPS 20 and no concurrency limit by default', () => {
    const c = loadConfig({ env: { TELNYX_SIP_USERNAME: 'u', TELNYX_SIP_PASSWORD: 'p' } });
    expect(c.telnyx.trunks).toEqual([]);
    expect(allTrunks(c.telnyx)).toEqual([
      {
        name: 'default',
        sipDomain: 'sip.telnyx.com',
        outboundProxy: '',
        sipTransport: 'udp',
        sipUsername: 'u',
        sipPassword: 'p',
        translatedUriTemplate: 'sip:{session_id}@{domain}',
        directUriTemplate: 'sip:{called}@{domain}',
        techPrefix: '',
        maxCallsPerSecond: 20,
        maxConcurrent: 0,
      },
    ]);
  });

  it('the default trunk takes its tech prefix, number format and limits from TELNYX_* env vars', () => {
    const c = loadConfig({
      env: {
        TELNYX_TECH_PREFIX: '1234#',
        TELNYX_COUNTRY_CODE: '44',
        TELNYX_MAX_CALLS_PER_SECOND: '0',
        TELNYX_MAX_CONCURRENT_CALLS: '10',
      },
    });
    expect(allTrunks(c.telnyx)[0]).toMatchObject({
      techPrefix: '1234#',
      numberFormat: { countryCode: '44', nationalPrefix: '0', internationalPrefix: '00' },
      maxCallsPerSecond: 0,
      maxConcurrent: 10,
    });
  });

  it('reads named trunks from the file, the password from the env var the file names; nothing inherited', () => {
    const file = tmpFile('gw.yaml', TWO_TRUNKS);
    const c = loadConfig({
      env: {
        GATEWAY_CONFIG: file,
        TELNYX_TRUNK_EU_PASSWORD: 'eu-SECRET',
        TELNYX_SIP_USERNAME: 'top',
        TELNYX_SIP_PASSWORD: 'x',
      },
    });
    const [def, eu, us] = allTrunks(c.telnyx);
    expect(def?.name).toBe('default');
    expect(eu).toEqual({
      name: 'eu',
      sipDomain: 'sip-eu.telnyx.com',
      outboundProxy: '127.0.0.1:5091',
      sipTransport: 'tcp',
      sipUsername: 'eu-user',
      sipPassword: 'eu-SECRET',
      sipPasswordEnv: 'TELNYX_TRUNK_EU_PASSWORD',
      translatedUriTemplate: 'sip:{session_id}@{domain};eu=1',
      directUriTemplate: 'sip:{called}@{domain}',
      techPrefix: '',
      numberFormat: { countryCode: '49', nationalPrefix: '0', internationalPrefix: '00' },
      maxCallsPerSecond: 5,
      maxConcurrent: 30,
    });
    // Another connection: the top-level credentials are not borrowed, the limits are the built-in defaults.
    expect(us).toMatchObject({
      name: 'us-ip',
      sipUsername: '',
      sipPassword: '',
      techPrefix: '7788#',
      numberFormat: { countryCode: '1', nationalPrefix: '1', internationalPrefix: '011' },
      maxCallsPerSecond: 20,
      maxConcurrent: 0,
    });
  });

  it('names the file key of every problem, all at once, and never shows a password', () => {
    const file = tmpFile(
      'gw.yaml',
      `telnyx:
  trunks:
    - name: eu
      sipDomain: "not a host"
      sipTransport: sctp
      outboundProxy: "proxy:99999"
      sipUsername: eu-user
      sipPasswordEnv: TELNYX_TRUNK_EU_PASSWORD
      directUriTemplate: "sip:{number}@{domain}"
      maxCallsPerSecond: -1
      numberFormat: { nationalPrefix: 0 }
      techPrefix: 0123
      sipDomian: x
    - name: default
    - name: eu
      sipUsername: u
      sipPassword: inline-SECRET
      sipPasswordEnv: SOME_VAR
    - just-a-string
`,
    );
    const { errors, config } = checkConfig({ env: { GATEWAY_CONFIG: file } });
    expect(config).toBeUndefined();
    const at = (key: string) => errors.filter((e) => e.startsWith(key));
    expect(at('telnyx.trunks[0].sipDomain =')[0]).toContain('"not a host" is not a host name or IP address');
    expect(at('telnyx.trunks[0].sipTransport =')[0]).toContain('must be one of udp, tcp, tls');
    expect(at('telnyx.trunks[0].outboundProxy =')[0]).toContain('port out of range');
    expect(at('telnyx.trunks[0].directUriTemplate =')[0]).toContain('unknown placeholder {number}');
    expect(at('telnyx.trunks[0].maxCallsPerSecond =')[0]).toContain('must be a whole number');
    expect(at('telnyx.trunks[0].numberFormat.nationalPrefix =')[0]).toContain('must be quoted');
    expect(at('telnyx.trunks[0].numberFormat.countryCode')[0]).toContain('required');
    expect(at('telnyx.trunks[0].techPrefix =')[0]).toContain('must be quoted');
    expect(at('telnyx.trunks[0].sipDomian')[0]).toContain('unknown key');
    expect(at('telnyx.trunks[0].sipPasswordEnv =')[0]).toContain('TELNYX_TRUNK_EU_PASSWORD is not set');
    expect(at('telnyx.trunks[1].name =')[0]).toContain('"default" is the trunk of the top-level TELNYX_* settings');
    expect(at('telnyx.trunks[2].name =')[0]).toContain('already used by telnyx.trunks[0]');
    expect(at('telnyx.trunks[2].sipPassword and telnyx.trunks[2].sipPasswordEnv')[0]).toContain('not both');
    expect(at('telnyx.trunks[3]')[0]).toContain('must be a mapping');
    for (const e of errors) expect(e).toContain(file);
    expect(errors.join('\n')).not.toContain('inline-SECRET');
  });

  it('requires a password with a username, and a list for telnyx.trunks', () => {
    expect(parseTrunks([{ name: 'a', sipUsername: 'u' }], {}, 'gw.yaml').errors).toEqual([
      'telnyx.trunks[0].sipPassword (or sipPasswordEnv) in gw.yaml: required when telnyx.trunks[0].sipUsername is set',
    ]);
    expect(parseTrunks({ name: 'a' }, {}, 'gw.yaml').errors[0]).toMatch(/^telnyx\.trunks in gw\.yaml: must be a list/);
    expect(parseTrunks(undefined, {}, undefined)).toEqual({ trunks: [], errors: [] });
  });

  it('redactedConfig shows trunk passwords only as set/unset', () => {
    const file = tmpFile('gw.yaml', TWO_TRUNKS);
    const c = loadConfig({ env: { GATEWAY_CONFIG: file, TELNYX_TRUNK_EU_PASSWORD: 'eu-SECRET' } });
    const red = redactedConfig(c);
    expect(red.telnyx.trunks.map((t) => [t.name, t.sipPassword])).toEqual([
      ['eu', 'set'],
      ['us-ip', 'unset'],
    ]);
    expect(JSON.stringify(red)).not.toContain('eu-SECRET');
    expect(c.telnyx.trunks[0]?.sipPassword).toBe('eu-SECRET'); // the copy, not the config, is redacted
  });

  it('--check lists every trunk without its password, and refuses a trunk_out the config does not define', async () => {
    const file = tmpFile('gw.yaml', TWO_TRUNKS);
    const rules = tmpFile(
      'routing.yaml',
      'rules:\n  - name: eu-calls\n    match: { called: "+49" }\n    mode: bypass\n    trunk_out: eu\ndefault:\n  mode: bypass\n',
    );
    const env = { GATEWAY_CONFIG: file, ROUTING_FILE: rules, TELNYX_TRUNK_EU_PASSWORD: 'eu-SECRET' };
    const ok = captureIo(['--check'], env);
    expect(await runCli(ok)).toBe(0);
    expect(ok.out).toContain('Telnyx trunks');
    expect(ok.out).toMatch(/ {2}default: udp sip\.telnyx\.com; IP authentication;.*20 calls\/s, unlimited at once/);
    expect(ok.out).toMatch(
      / {2}eu: tcp sip-eu\.telnyx\.com via 127\.0\.0\.1:5091; user eu-user, password set \(TELNYX_TRUNK_EU_PASSWORD\); E\.164 \+49/,
    );
    expect(ok.out).toMatch(/ {2}us-ip: .*tech prefix 7788#/);
    expect(ok.out + ok.err).not.toContain('eu-SECRET');

    fs.writeFileSync(rules, fs.readFileSync(rules, 'utf8').replace('trunk_out: eu', 'trunk_out: asia'));
    const bad = captureIo(['--check'], env);
    expect(await runCli(bad)).toBe(2);
    expect(bad.err).toContain(
      'key "trunk_out": "asia" is not a Telnyx trunk of the gateway config (known: default, eu, us-ip)',
    );
  });
});

it("the README's telnyx.trunks example loads as it is", () => {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('**Several trunks, and their limits.**'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toContain('trunks:');
  const file = tmpFile('gw.yaml', block ?? '');
  const c = loadConfig({ env: { GATEWAY_CONFIG: file, TELNYX_TRUNK_EU_PASSWORD: 'pw' } });
  expect(allTrunks(c.telnyx).map((t) => [t.name, t.sipTransport, t.techPrefix])).toEqual([
    ['default', 'udp', ''],
    ['eu', 'tls', ''],
    ['us-ip', 'udp', '7788#'],
  ]);
});
