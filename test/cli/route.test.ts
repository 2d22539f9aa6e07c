/** `kallglot-gw route`, in-process: the matching rule and the session request the daemon would make for a call. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.ts';
import { captureIo } from './io.ts';

const dirs: string[] = [];
function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-route-'));
  dirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const RULES = `rules:
  - name: emergency
    match: { called: { regex: "^(112|911)$" } }
    mode: bypass
  - name: from-header
    match:
      header: { name: X-Kallglot-Languages }
      source: 10.0.0.0/8
    mode: bidirectional_translation
    languages_from_header: X-Kallglot-Languages
    metadata: { origin: header }
  - name: branch-trunk
    match: { trunk: lyon }
    mode: assistive_translation
    source_language: fr
    target_language: en
default:
  mode: bidirectional_translation
  source_language: en
  target_language: de
trunks:
  - name: lyon
    source: 10.20.0.0/16
`;

async function route(argv: string[], env: NodeJS.ProcessEnv = {}) {
  const io = captureIo(['route', ...argv], env);
  const code = await runCli(io);
  return { code, out: io.out, err: io.err };
}

function requestOf(out: string): Record<string, unknown> {
  return JSON.parse(out.slice(out.indexOf('{'))) as Record<string, unknown>;
}

describe('kallglot-gw route', () => {
  it('prints the matching rule and the Kallglot session request built by sessionRequest', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const r = await route(
      [
        '--called',
        '+4930123',
        '--calling',
        '+4989555',
        '--source',
        '10.0.0.1',
        '--header',
        'X-Kallglot-Languages=de-en',
      ],
      { ROUTING_FILE: rules },
    );
    expect(r.code).toBe(0);
    expect(r.out).toContain(`routing file: ${rules}`);
    expect(r.out).toContain('matching rule: from-header (rules[1], line 5)');
    expect(r.out).toContain('mode: bidirectional_translation, de -> en');
    expect(requestOf(r.out)).toEqual({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
      requestStyle: 'routing',
      sipUri: '<direct route URI>',
      routing: { type: 'sip' },
      metadata: {
        origin: 'header',
        sip_call_id: '<Call-ID>',
        from: '+4989555',
        to: '+4930123',
        pbx_source: '10.0.0.1',
        rule: 'from-header',
      },
      idempotencyKey: 'sip-<Call-ID>',
    });
  });

  it('shows the request style the daemon is configured with (KALLGLOT_REQUEST_STYLE)', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const r = await route(['--called', '+4930123'], { ROUTING_FILE: rules, KALLGLOT_REQUEST_STYLE: 'provider' });
    expect(r.code).toBe(0);
    expect(requestOf(r.out)).toMatchObject({ requestStyle: 'provider', sipUri: '<direct route URI>' });
  });

  it('says bypass, no session for a bypass rule', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const r = await route(['--called', '112', '--rules', rules]);
    expect(r.code).toBe(0);
    expect(r.out).toContain('matching rule: emergency (rules[0], line 2)');
    expect(r.out).toContain('bypass, no session');
    expect(r.out).not.toContain('{');
  });

  it('falls through to later rules and to the default route', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const trunk = await route(['--called', '+331', '--trunk', 'lyon', '--header', 'X-Kallglot-Languages: bogus'], {
      ROUTING_FILE: rules,
    });
    expect(trunk.out).toContain('matching rule: branch-trunk');
    expect(requestOf(trunk.out)).toMatchObject({ mode: 'assistive_translation', sourceLanguage: 'fr' });
    const none = await route(['--called', '+4930123'], { ROUTING_FILE: rules });
    expect(none.out).toContain('matching rule: none; the default route applies');
    expect(requestOf(none.out)).toMatchObject({
      sourceLanguage: 'en',
      targetLanguage: 'de',
      metadata: { rule: 'default' },
    });
  });

  it('names the trunk from --source as the daemon would, and sends it as session metadata', async () => {
    const rules = tmpFile('routing.yaml', RULES);
    const r = await route(['--called', '+331', '--source', '10.20.1.1'], { ROUTING_FILE: rules });
    expect(r.out).toContain('trunk lyon');
    expect(r.out).toContain('matching rule: branch-trunk');
    expect(requestOf(r.out)).toMatchObject({ metadata: { trunk: 'lyon', rule: 'branch-trunk' } });
  });

  it('exits 2 on a bad routing file, naming it', async () => {
    const rules = tmpFile('routing.yaml', 'rules: [\n');
    const r = await route(['--called', '+49'], { ROUTING_FILE: rules });
    expect(r.code).toBe(2);
    expect(r.err).toContain(`routing rules ${rules}`);
    const missing = await route(['--called', '+49', '--rules', '/nonexistent/routing.yaml']);
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('/nonexistent/routing.yaml');
  });

  it('exits 2 with the usage on bad arguments', async () => {
    for (const argv of [[], ['--called', '+49', '--header', 'no-separator'], ['--called', '+49', '--bogus']]) {
      const r = await route(argv);
      expect(r.code).toBe(2);
      expect(r.err).toContain('Usage: kallglot-gw route');
    }
  });
});
