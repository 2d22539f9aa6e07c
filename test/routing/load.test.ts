import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadRules, parseRules, RulesError } from '../../src/routing/load.ts';
import { cidrContains } from '../../src/routing/cidr.ts';
import { describeRules } from '../../src/routing/describe.ts';

const tmpDirs: string[] = [];
function tmpFile(name: string, content: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-routing-load-'));
  tmpDirs.push(dir);
  const file = path.join(dir, name);
  fs.writeFileSync(file, content);
  return file;
}
afterEach(() => {
  for (const d of tmpDirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

const DEFAULT = ['default:', '  mode: bidirectional_translation', '  source_language: en', '  target_language: de'];

/** Lines are joined so each test can state the line number it expects an error on. */
function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function errorOf(fn: () => unknown): RulesError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return err as RulesError;
  }
  throw new Error('expected a RulesError');
}

function parseError(text: string): RulesError {
  return errorOf(() => parseRules(text, '/etc/gw/routing.yaml'));
}

describe('loadRules: valid files', () => {
  it('loads and compiles a YAML file with every kind of key', () => {
    const file = tmpFile(
      'routing.yaml',
      yaml(
        'rules:',
        '  - name: emergency',
        '    match: { called: { regex: "^(112|911)$" } }',
        '    mode: bypass',
        '  - name: german',
        '    match:',
        '      called: "+49 (30)"',
        '      calling: { regex: "^\\\\+1" }',
        '      source: [10.0.0.0/8, "2001:db8::/32", 192.168.1.7]',
        '      trunk: telnyx-main',
        '      header: { name: X-Kallglot-Languages, value: { regex: "^de" } }',
        '    mode: assistive_translation',
        '    source_language: PT-br',
        '    target_language: zh-hans',
        '    metadata: { tenant: acme, cost_center: "4711" }',
        '    recording: true',
        '    greeting: { text: Hallo, language: de }',
        '  - name: from-header',
        '    match: { direction: outbound }',
        '    dial_code: "*49*"',
        '    mode: bidirectional_translation',
        '    languages_from_header: X-Kallglot-Languages',
        ...DEFAULT,
        'trunks:',
        '  - name: telnyx-main',
        '    source: 10.0.0.0/8',
        '    tgrp: { regex: "^main" }',
        '    header: { name: X-Trunk, value: main }',
      ),
    );
    const rs = loadRules(file);
    expect(rs.file).toBe(file);
    expect(rs.rules.map((r) => r.name)).toEqual(['emergency', 'german', 'from-header']);
    const [emergency, german, fromHeader] = rs.rules;
    expect(emergency!.mode).toBe('bypass');
    expect(emergency!.match.called).toEqual({ kind: 'regex', regex: /^(112|911)$/ });
    expect(german!.line).toBe(5);
    expect(german!.match.called).toEqual({ kind: 'prefix', prefix: '+4930' });
    expect(german!.match.calling?.kind).toBe('regex');
    expect(german!.match.trunk).toBe('telnyx-main');
    expect(german!.match.header?.name).toBe('x-kallglot-languages');
    expect(german!.match.source?.cidrs).toEqual(['10.0.0.0/8', '2001:db8::/32', '192.168.1.7/32']);
    expect(cidrContains(german!.match.source!, '2001:db8::1')).toBe(true);
    // Language codes are canonicalised.
    expect(german!.sourceLanguage).toBe('pt-BR');
    expect(german!.targetLanguage).toBe('zh-Hans');
    expect(german!.metadata).toEqual({ tenant: 'acme', cost_center: '4711' });
    expect(german!.recording).toBe(true);
    expect(german!.greeting).toEqual({ text: 'Hallo', language: 'de' });
    expect(fromHeader!.languagesFromHeader).toBe('x-kallglot-languages');
    expect(fromHeader!.recording).toBe(false);
    expect(fromHeader!.dialCode).toBe('*49*');
    expect(fromHeader!.match.direction).toBe('outbound');
    expect(rs.trunks).toHaveLength(1);
    expect(rs.trunks[0]).toMatchObject({ name: 'telnyx-main', index: 0, line: 28, tgrp: { kind: 'regex' } });
    expect(rs.trunks[0]!.source?.cidrs).toEqual(['10.0.0.0/8']);
    expect(rs.trunks[0]!.header).toEqual({ name: 'x-trunk', value: { kind: 'exact', value: 'main' } });
    // german greets but can match calls from the PBX, which never hear a greeting.
    expect(rs.warnings).toEqual([
      expect.objectContaining({ line: 17, ruleIndex: 1, ruleName: 'german', key: 'greeting' }),
    ]);
    expect(rs.default).toEqual({
      mode: 'bidirectional_translation',
      sourceLanguage: 'en',
      targetLanguage: 'de',
      metadata: {},
      recording: false,
    });
  });

  it('loads JSON, with line numbers in its errors too', () => {
    const good = tmpFile(
      'routing.json',
      JSON.stringify(
        { rules: [{ name: 'a', match: { called: '+1' }, mode: 'bypass' }], default: { mode: 'bypass' } },
        null,
        2,
      ),
    );
    const rs = loadRules(good);
    expect(rs.rules[0]!.match.called).toEqual({ kind: 'prefix', prefix: '+1' });
    expect(rs.default.mode).toBe('bypass');

    const bad = tmpFile(
      'bad.json',
      JSON.stringify({ rules: [{ name: 'a', match: {}, mode: 'translate' }], default: { mode: 'bypass' } }, null, 2),
    );
    const err = errorOf(() => loadRules(bad));
    expect(err.line).toBe(6);
    expect(err.key).toBe('mode');
    expect(err.message).toContain(bad);
  });

  it('accepts a file with only a default, and an empty rules key', () => {
    expect(parseRules(yaml(...DEFAULT), 'f').rules).toEqual([]);
    expect(parseRules(yaml('rules:', '  # all commented out', ...DEFAULT), 'f').rules).toEqual([]);
  });

  it('loads the shipped config/routing.yaml with the emergency bypass first', () => {
    const rs = loadRules(path.join(import.meta.dirname, '../../config/routing.yaml'));
    expect(rs.rules.length).toBeGreaterThanOrEqual(4);
    expect(rs.rules[0]!.mode).toBe('bypass');
    expect(rs.rules[0]!.name).toBe('emergency-bypass');
    expect(rs.default).toMatchObject({ mode: 'bidirectional_translation', sourceLanguage: 'en', targetLanguage: 'de' });
    expect(rs.rules.some((r) => r.languagesFromHeader)).toBe(true);
    expect(rs.rules.some((r) => r.match.source)).toBe(true);
  });
});

describe('loadRules: errors name file, rule, key and line', () => {
  it('rejects an unknown key in a rule', () => {
    const err = parseError(
      yaml('rules:', '  - name: a', '    match: {}', '    mode: bypass', '    recordings: true', ...DEFAULT),
    );
    expect(err).toMatchObject({
      line: 5,
      ruleIndex: 0,
      ruleName: 'a',
      key: 'recordings',
      file: '/etc/gw/routing.yaml',
    });
    expect(err.message).toMatch(
      /^routing rules \/etc\/gw\/routing\.yaml, line 5, column 5: rules\[0\] \("a"\), key "recordings": unknown key/,
    );
  });

  it('rejects unknown keys in match, at top level, and in default', () => {
    expect(
      parseError(yaml('rules:', '  - name: a', '    match: { dialed: "+1" }', '    mode: bypass', ...DEFAULT)),
    ).toMatchObject({ line: 3, key: 'match.dialed' });
    expect(parseError(yaml('rule: []', ...DEFAULT))).toMatchObject({ line: 1, key: 'rule', ruleIndex: undefined });
    expect(parseError(yaml(...DEFAULT, '  colour: blue'))).toMatchObject({ line: 5, key: 'default.colour' });
  });

  it('rejects a duplicate rule name, pointing at the second one', () => {
    const err = parseError(
      yaml(
        'rules:',
        '  - name: a',
        '    match: {}',
        '    mode: bypass',
        '  - name: a',
        '    match: {}',
        '    mode: bypass',
        ...DEFAULT,
      ),
    );
    expect(err).toMatchObject({ line: 5, ruleIndex: 1, ruleName: 'a', key: 'name' });
    expect(err.reason).toMatch(/duplicate rule name "a" \(already used by rules\[0\]\)/);
  });

  it('rejects the reserved name "default" and a missing name', () => {
    expect(
      parseError(yaml('rules:', '  - name: default', '    match: {}', '    mode: bypass', ...DEFAULT)).reason,
    ).toMatch(/reserved/);
    expect(parseError(yaml('rules:', '  - match: {}', '    mode: bypass', ...DEFAULT))).toMatchObject({
      line: 2,
      ruleIndex: 0,
      key: 'name',
    });
  });

  it('rejects an invalid regex', () => {
    const err = parseError(
      yaml('rules:', '  - name: r', '    match:', '      called: { regex: "^(49" }', '    mode: bypass', ...DEFAULT),
    );
    expect(err).toMatchObject({ line: 4, ruleName: 'r', key: 'match.called.regex' });
    expect(err.reason).toMatch(/invalid regular expression/);
  });

  it('rejects invalid CIDRs, naming the list element', () => {
    const prefix = parseError(
      yaml(
        'rules:',
        '  - name: c',
        '    match:',
        '      source:',
        '        - 10.0.0.0/8',
        '        - 10.0.0.0/33',
        '    mode: bypass',
        ...DEFAULT,
      ),
    );
    expect(prefix).toMatchObject({ line: 6, key: 'match.source[1]' });
    expect(prefix.reason).toMatch(/invalid CIDR: prefix length "33"/);
    expect(
      parseError(yaml('rules:', '  - name: c', '    match: { source: 300.1.1.1/8 }', '    mode: bypass', ...DEFAULT))
        .reason,
    ).toMatch(/not an IPv4 or IPv6 address/);
    expect(
      parseError(
        yaml('rules:', '  - name: c', '    match: { source: "2001:db8::/129" }', '    mode: bypass', ...DEFAULT),
      ).reason,
    ).toMatch(/0 to 128/);
    expect(
      parseError(yaml('rules:', '  - name: c', '    match: { source: [] }', '    mode: bypass', ...DEFAULT)).reason,
    ).toMatch(/at least one/);
  });

  it('rejects a missing default', () => {
    const err = parseError(yaml('rules: []'));
    expect(err).toMatchObject({ key: 'default', line: 1 });
    expect(err.reason).toMatch(/missing required key "default"/);
  });

  it('rejects a bad mode', () => {
    const err = parseError(yaml('rules:', '  - name: m', '    match: {}', '    mode: translate', ...DEFAULT));
    expect(err).toMatchObject({ line: 4, key: 'mode' });
    expect(err.reason).toMatch(/bidirectional_translation, assistive_translation, bypass/);
    expect(parseError(yaml('default:', '  mode:'))).toMatchObject({ line: 2, key: 'default.mode' });
  });

  it('rejects bad and missing language codes', () => {
    const bad = parseError(
      yaml(
        'rules:',
        '  - name: l',
        '    match: {}',
        '    mode: bidirectional_translation',
        '    source_language: german',
        '    target_language: en',
        ...DEFAULT,
      ),
    );
    expect(bad).toMatchObject({ line: 5, key: 'source_language' });
    expect(bad.reason).toMatch(/not a valid language code/);
    const missing = parseError(
      yaml(
        'rules:',
        '  - name: l',
        '    match: {}',
        '    mode: assistive_translation',
        '    source_language: de',
        ...DEFAULT,
      ),
    );
    expect(missing).toMatchObject({ line: 2, key: 'target_language' });
    expect(parseError(yaml('default:', '  mode: bidirectional_translation', '  source_language: en'))).toMatchObject({
      key: 'default.target_language',
    });
    expect(parseError(yaml('default:', '  mode: bypass', '  greeting: { text: hi, language: english }'))).toMatchObject(
      { line: 3, key: 'default.greeting.language' },
    );
    const same = parseError(
      yaml('default:', '  mode: bidirectional_translation', '  source_language: de', '  target_language: DE'),
    );
    expect(same.reason).toMatch(/both "de"/);
  });

  it('rejects languages_from_header combined with fixed languages or bypass, and bad header names', () => {
    expect(
      parseError(
        yaml(
          'rules:',
          '  - name: h',
          '    match: {}',
          '    mode: bidirectional_translation',
          '    languages_from_header: X-L',
          '    source_language: de',
          ...DEFAULT,
        ),
      ),
    ).toMatchObject({ line: 5, key: 'languages_from_header' });
    expect(
      parseError(
        yaml(
          'rules:',
          '  - name: h',
          '    match: {}',
          '    mode: bypass',
          '    languages_from_header: X-L',
          ...DEFAULT,
        ),
      ).reason,
    ).toMatch(/bypass/);
    expect(
      parseError(
        yaml('rules:', '  - name: h', '    match: { header: { name: "X Bad" } }', '    mode: bypass', ...DEFAULT),
      ),
    ).toMatchObject({ line: 3, key: 'match.header.name' });
  });

  it('explains that an unquoted +49 is a number in YAML', () => {
    const err = parseError(
      yaml('rules:', '  - name: n', '    match:', '      called: +49', '    mode: bypass', ...DEFAULT),
    );
    expect(err).toMatchObject({ line: 4, key: 'match.called' });
    expect(err.reason).toMatch(/YAML reads \+49 as a number; quote it: "\+49"/);
  });

  it('rejects non-numeric prefixes, non-string metadata and non-boolean recording', () => {
    expect(
      parseError(yaml('rules:', '  - name: n', '    match: { called: "+49x" }', '    mode: bypass', ...DEFAULT)).reason,
    ).toMatch(/not a number prefix/);
    expect(parseError(yaml(...DEFAULT, '  metadata:', '    tenant: 42'))).toMatchObject({
      line: 6,
      key: 'default.metadata.tenant',
    });
    expect(parseError(yaml(...DEFAULT, '  recording: yes'))).toMatchObject({ line: 5, key: 'default.recording' });
  });

  it('reports YAML syntax errors with their line', () => {
    const err = parseError(yaml('rules:', '  - name: a', '    name: b', ...DEFAULT));
    expect(err.line).toBe(3);
    expect(err.reason).toMatch(/^syntax error: Map keys must be unique/);
    expect(parseError('').reason).toMatch(/file is empty/);
    expect(parseError(yaml('- a', '- b')).reason).toMatch(/must be a mapping/);
  });

  it('names the file when it cannot be read', () => {
    const err = errorOf(() => loadRules('/nonexistent/routing.yaml'));
    expect(err.message).toMatch(/\/nonexistent\/routing\.yaml: cannot read file/);
  });
});

describe('loadRules: a greeting on a rule calls from the PBX can match is kept, with a warning', () => {
  const greeted = (...match: string[]) =>
    yaml(
      'rules:',
      '  - name: g',
      ...match,
      '    mode: bypass',
      '    greeting: { text: Hallo, language: de }',
      ...DEFAULT,
    );

  it('warns once per rule, naming file, rule, key and line; the greeting still reaches TeXML calls', () => {
    const rs = parseRules(greeted('    match: {}'), '/etc/gw/routing.yaml');
    expect(rs.rules[0]!.greeting).toEqual({ text: 'Hallo', language: 'de' });
    expect(rs.warnings).toHaveLength(1);
    expect(rs.warnings[0]).toMatchObject({ line: 5, ruleIndex: 0, ruleName: 'g', key: 'greeting' });
    expect(rs.warnings[0]!.message).toMatch(
      /^routing rules \/etc\/gw\/routing\.yaml, line 5, column 5: rules\[0\] \("g"\), key "greeting": greeting is spoken only on calls from Telnyx/,
    );
    expect(describeRules(rs).rules[0]!.warnings).toEqual([rs.warnings[0]!.reason]);
    expect(parseRules(greeted('    match: { direction: outbound }'), 'f').warnings).toHaveLength(1);
  });

  it('does not warn for inbound-only rules, rules without a greeting, or the default', () => {
    expect(parseRules(greeted('    match: { direction: inbound }'), 'f').warnings).toEqual([]);
    const rs = parseRules(yaml(...DEFAULT, '  greeting: { text: hi, language: en }'), 'f');
    expect(rs.warnings).toEqual([]);
    expect(describeRules(parseRules(yaml(...DEFAULT), 'f')).rules).toEqual([]);
  });
});
