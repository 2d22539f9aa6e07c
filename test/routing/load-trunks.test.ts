/**
 * The loader's checks on what this file format added: the `trunks` section, rules naming trunks, `dial_code` and
 * `match.direction`. Every error names the file, the trunk or rule, the key and the line.
 */
import { describe, expect, it } from 'vitest';
import { describeRules, describeRulesError } from '../../src/routing/describe.ts';
import { parseRules, RulesError } from '../../src/routing/load.ts';

const FILE = '/etc/gw/routing.yaml';
const DEFAULT = ['default:', '  mode: bypass'];

function yaml(...lines: string[]): string {
  return `${lines.join('\n')}\n`;
}

function parseError(text: string): RulesError {
  try {
    parseRules(text, FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(RulesError);
    return err as RulesError;
  }
  throw new Error('expected a RulesError');
}

describe('trunks section', () => {
  it('rejects a rule naming a trunk the file does not define, listing those it does', () => {
    const err = parseError(
      yaml(
        'trunks:',
        '  - name: branch-a',
        '    source: 10.0.0.0/8',
        'rules:',
        '  - name: r',
        '    match: { trunk: branch-b }',
        '    mode: bypass',
        ...DEFAULT,
      ),
    );
    expect(err).toMatchObject({ file: FILE, line: 6, ruleIndex: 0, ruleName: 'r', key: 'match.trunk' });
    expect(err.reason).toBe('unknown trunk "branch-b" (trunks defined: branch-a)');
    const none = parseError(yaml('rules:', '  - name: r', '    match: { trunk: x }', '    mode: bypass', ...DEFAULT));
    expect(none.reason).toMatch(/no "trunks" section/);
  });

  it('accepts the trunks section after the rules', () => {
    const rs = parseRules(
      yaml(
        'rules:',
        '  - name: r',
        '    match: { trunk: t }',
        '    mode: bypass',
        ...DEFAULT,
        'trunks:',
        '  - name: t',
        '    tgrp: a',
      ),
      FILE,
    );
    expect(rs.rules[0]!.match.trunk).toBe('t');
    expect(describeRules(rs).trunks).toEqual([{ name: 't', index: 0, line: 8, match: { tgrp: 'a' } }]);
  });

  it('rejects a duplicate trunk name, pointing at the second one', () => {
    const err = parseError(yaml('trunks:', '  - name: a', '    tgrp: x', '  - name: a', '    tgrp: y', ...DEFAULT));
    expect(err).toMatchObject({ line: 4, trunkIndex: 1, trunkName: 'a', key: 'name' });
    expect(err.reason).toBe('duplicate trunk name "a" (already used by trunks[0])');
    expect(err.message).toBe(
      `routing rules ${FILE}, line 4, column 11: trunks[1] ("a"), key "name": duplicate trunk name "a" (already used by trunks[0])`,
    );
    expect(describeRulesError(err)).toMatchObject({ trunkIndex: 1, trunkName: 'a', key: 'name', line: 4 });
  });

  it('rejects bad CIDRs, IPv4 and IPv6, naming the list element', () => {
    const v4 = parseError(
      yaml('trunks:', '  - name: b', '    source:', '      - 10.0.0.0/8', '      - 10.0.0.0/33', ...DEFAULT),
    );
    expect(v4).toMatchObject({ line: 5, trunkIndex: 0, trunkName: 'b', key: 'source[1]' });
    expect(v4.reason).toMatch(/invalid CIDR: prefix length "33"/);
    const v6 = parseError(yaml('trunks:', '  - name: b', '    source: "2001:db8::/129"', ...DEFAULT));
    expect(v6).toMatchObject({ line: 3, key: 'source' });
    expect(v6.reason).toMatch(/0 to 128/);
    expect(parseError(yaml('trunks:', '  - name: b', '    source: 10.0.0.300', ...DEFAULT)).reason).toMatch(
      /not an IPv4 or IPv6 address/,
    );
  });

  it('rejects a trunk without conditions or name, unknown keys and bad header names', () => {
    expect(parseError(yaml('trunks:', '  - name: empty', ...DEFAULT))).toMatchObject({
      line: 2,
      trunkName: 'empty',
      reason: 'a trunk needs at least one of source, tgrp, header',
    });
    expect(parseError(yaml('trunks:', '  - tgrp: a', ...DEFAULT))).toMatchObject({ line: 2, key: 'name' });
    expect(parseError(yaml('trunks:', '  - name: t', '    otg: a', ...DEFAULT))).toMatchObject({
      line: 3,
      key: 'otg',
    });
    expect(parseError(yaml('trunks:', '  - name: t', '    header: { name: "X Bad" }', ...DEFAULT))).toMatchObject({
      line: 3,
      key: 'header.name',
    });
    expect(parseError(yaml('trunks:', '  name: t', ...DEFAULT))).toMatchObject({ line: 2, key: 'trunks' });
  });
});

describe('dial_code and direction', () => {
  const rule = (...extra: string[]) =>
    yaml('rules:', '  - name: d', '    match: {}', '    mode: bypass', ...extra, ...DEFAULT);

  it('reads a quoted dial code', () => {
    expect(parseRules(rule('    dial_code: "*49*"'), FILE).rules[0]!.dialCode).toBe('*49*');
    expect(parseRules(rule('    dial_code: "#7"'), FILE).rules[0]!.dialCode).toBe('#7');
  });

  it('explains that an unquoted *49* is a YAML alias', () => {
    const err = parseError(rule('    dial_code: *49*'));
    expect(err).toMatchObject({ line: 5, ruleName: 'd', key: 'dial_code' });
    expect(err.reason).toBe('must be a string, but YAML reads *49* as an alias (*name); quote it: "*49*"');
  });

  it('rejects dial codes that are not digits, * and #', () => {
    for (const bad of ['"+49"', '"*4 9*"', '"abc"']) {
      const err = parseError(rule(`    dial_code: ${bad}`));
      expect(err, bad).toMatchObject({ line: 5, key: 'dial_code' });
      expect(err.reason, bad).toMatch(/is not a dial code/);
    }
  });

  it('rejects a direction other than inbound or outbound, and dial_code in the default', () => {
    const err = parseError(
      yaml('rules:', '  - name: d', '    match:', '      direction: incoming', '    mode: bypass', ...DEFAULT),
    );
    expect(err).toMatchObject({ line: 4, key: 'match.direction' });
    expect(err.reason).toMatch(/use inbound \(calls from Telnyx\) or outbound \(calls from the PBX\)/);
    expect(parseError(yaml(...DEFAULT, '  dial_code: "*1*"'))).toMatchObject({ line: 3, key: 'default.dial_code' });
  });
});
