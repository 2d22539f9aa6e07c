/** `kallglot-gw --check`, in-process: env, config file and routing file validated together; secrets never shown. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.ts';
import { captureIo } from './io.ts';

const dirs: string[] = [];
function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-check-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const RULES =
  'rules:\n  - name: german\n    match: { called: "+49" }\n    mode: bidirectional_translation\n    source_language: en\n    target_language: de\ndefault:\n  mode: bypass\n';

describe('kallglot-gw --check', () => {
  it('prints the effective configuration with secrets only as set/unset, and exits 0', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const file = tmpFile('gw.yaml', 'http:\n  port: 9100\n');
    const env = {
      GATEWAY_CONFIG: file,
      ROUTING_FILE: rules,
      SIP_PORT: '5070',
      KALLGLOT_API_URL: 'https://api.kallglot.com/v1',
      KALLGLOT_API_KEY: 'sk_live_SECRET1',
      TELNYX_SIP_USERNAME: 'gwuser',
      TELNYX_SIP_PASSWORD: 'pw-SECRET2',
      TELNYX_API_KEY: 'KEY-SECRET3',
      ADMIN_TOKEN: 'admin-SECRET4',
      PBX_AUTH_USERS: 'alice:SECRET5',
      DRACHTIO_SECRET: 'SECRET6',
    };
    const io = captureIo(['--check'], env);
    expect(await runCli(io)).toBe(0);
    for (const s of ['SECRET1', 'SECRET2', 'SECRET3', 'SECRET4', 'SECRET5', 'SECRET6']) {
      expect(io.out + io.err).not.toContain(s);
    }
    expect(io.out).toMatch(/KALLGLOT_API_KEY\s+kallglot\.apiKey\s+set\s+\[env\]/);
    expect(io.out).toMatch(/TELNYX_PUBLIC_KEY\s+telnyx\.publicKey\s+\(empty\)/);
    expect(io.out).toMatch(/PBX_AUTH_USERS\s+calls\.pbxAuthUsers\s+set\s+\[env\]/);
    expect(io.out).toMatch(/SIP_PORT\s+sip\.port\s+5070\s+\[env\]/);
    expect(io.out).toMatch(/HTTP_PORT\s+http\.port\s+9100\s+\[file\]/);
    expect(io.out).toMatch(/TELNYX_SIP_USERNAME\s+telnyx\.sipUsername\s+gwuser/);
    expect(io.out).toContain(`config file: ${file}`);
    expect(io.out).toContain(`routing file ${rules}: 1 rule (german), default bypass`);
    expect(io.out).toContain('kallglot: https://api.kallglot.com/v1');
    expect(io.out).toContain('configuration OK');
  });

  it('prints routing warnings without failing', async () => {
    const greeted = RULES.replace(
      '    target_language: de\n',
      '    target_language: de\n    greeting: { text: Hallo, language: de }\n',
    );
    const io = captureIo(['--check'], { ROUTING_FILE: tmpFile('routing.yaml', greeted) });
    expect(await runCli(io)).toBe(0);
    expect(io.out).toMatch(
      /warning: routing rules .*routing\.yaml, line 7, column 5: rules\[0\] \("german"\), key "greeting"/,
    );
    expect(io.out).toContain('configuration OK');
  });

  it('lists config and routing problems together and exits 2, never showing a secret', async () => {
    const rules = tmpFile('routing.yaml', 'rules:\n  - name: x\n    mode: nonsense\ndefault:\n  mode: bypass\n');
    const env = {
      ROUTING_FILE: rules,
      SIP_PORT: 'abc',
      TELNYX_STREAM_ON_ANSWER: 'maybe',
      PBX_AUTH_USERS: 'bob:SECRET7,alice',
    };
    const io = captureIo(['--check'], env);
    expect(await runCli(io)).toBe(2);
    expect(io.err).toContain('4 problems');
    expect(io.err).toContain('SIP_PORT (sip.port) = "abc"');
    expect(io.err).toContain('TELNYX_STREAM_ON_ANSWER (telnyx.streamOnAnswer) = "maybe"');
    expect(io.err).toContain('PBX_AUTH_USERS (calls.pbxAuthUsers) is set');
    expect(io.err).toContain(`routing rules ${rules}`);
    expect(io.out + io.err).not.toContain('SECRET7');
    expect(io.out).toBe('');
  });

  it('shows the sandbox as derived, and refuses production without an account', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const dev = captureIo(['--check'], { ROUTING_FILE: rules });
    expect(await runCli(dev)).toBe(0);
    expect(dev.out).toMatch(/KALLGLOT_SANDBOX\s+kallglot\.sandbox\s+true\s+\[derived\]/);
    expect(dev.out).toContain('kallglot: LOCAL SANDBOX');
    const prod = captureIo(['--check'], { ROUTING_FILE: rules, NODE_ENV: 'production' });
    expect(await runCli(prod)).toBe(2);
    expect(prod.err).toMatch(/NODE_ENV=production and no Kallglot account: set KALLGLOT_API_URL/);
  });
});
