import { describe, expect, it } from 'vitest';
import { parseRules } from '../../src/routing/load.ts';
import { matchRoute } from '../../src/routing/match.ts';
import type { CallInfo, RuleSet } from '../../src/routing/types.ts';

const DEFAULT = 'default:\n  mode: bidirectional_translation\n  source_language: en\n  target_language: de\n';

/** Trunks named after their tgrp label, for rules that match on a trunk. */
const TRUNKS = ['telnyx-eu', 'telnyx-us', 'main', 'other'].map((t) => `  - name: ${t}\n    tgrp: ${t}\n`).join('');

function rules(rulesYaml: string, defaultYaml = DEFAULT): RuleSet {
  return parseRules(`trunks:\n${TRUNKS}rules:\n${rulesYaml}\n${defaultYaml}`, 'test.yaml');
}

/** A call with a case-insensitive header lookup, as the contract of CallInfo.headers requires. */
function call(over: Partial<Omit<CallInfo, 'headers'>> & { headers?: Record<string, string> } = {}): CallInfo {
  const headers = over.headers ?? {};
  return {
    called: over.called ?? '+15550100',
    calling: over.calling ?? '+15550199',
    sourceIp: over.sourceIp ?? '192.0.2.10',
    direction: over.direction ?? 'outbound',
    ...(over.trunk !== undefined ? { trunk: over.trunk } : {}),
    headers: (name) => Object.entries(headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
  };
}

const translate = (from: string, to: string): string =>
  `    mode: bidirectional_translation\n    source_language: ${from}\n    target_language: ${to}`;

describe('matchRoute', () => {
  it('falls back to the default with ruleName "default"', () => {
    const rs = rules(`  - name: de\n    match: { called: "+49" }\n${translate('de', 'en')}`);
    expect(matchRoute(rs, call({ called: '+33123' }))).toEqual({
      ruleName: 'default',
      calledNumber: '+33123',
      mode: 'bidirectional_translation',
      sourceLanguage: 'en',
      targetLanguage: 'de',
      metadata: {},
      recording: false,
    });
  });

  it('uses the first matching rule in file order', () => {
    const rs = rules(
      [
        `  - name: berlin\n    match: { called: "+4930" }\n${translate('de', 'fr')}`,
        `  - name: germany\n    match: { called: "+49" }\n${translate('de', 'en')}`,
        `  - name: berlin-again\n    match: { called: "+4930" }\n${translate('de', 'es')}`,
      ].join('\n'),
    );
    expect(matchRoute(rs, call({ called: '+4930123456' })).ruleName).toBe('berlin');
    expect(matchRoute(rs, call({ called: '+4989123456' }))).toMatchObject({
      ruleName: 'germany',
      sourceLanguage: 'de',
      targetLanguage: 'en',
    });
  });

  it('matches called/calling prefixes after removing visual separators, but nothing more', () => {
    const rs = rules(
      [
        `  - name: called\n    match: { called: "+49 30" }\n${translate('de', 'en')}`,
        `  - name: calling\n    match: { calling: "+1 (555)" }\n${translate('en', 'de')}`,
      ].join('\n'),
    );
    expect(matchRoute(rs, call({ called: '+49 (30) 123-45.67' })).ruleName).toBe('called');
    expect(matchRoute(rs, call({ called: '004930123' })).ruleName).toBe('calling'); // +49 is not 0049
    expect(matchRoute(rs, call({ called: '+331', calling: '+1-555-0100' })).ruleName).toBe('calling');
    expect(matchRoute(rs, call({ called: '+331', calling: '+1556' })).ruleName).toBe('default');
  });

  it('matches number regexes against the separator-free number', () => {
    const rs = rules(`  - name: re\n    match: { calling: { regex: "^(\\\\+|00)49" } }\n${translate('de', 'en')}`);
    expect(matchRoute(rs, call({ calling: '0049 30 1' })).ruleName).toBe('re');
    expect(matchRoute(rs, call({ calling: '+49-30-1' })).ruleName).toBe('re');
    expect(matchRoute(rs, call({ calling: '049301' })).ruleName).toBe('default');
  });

  it('bypasses emergency numbers without languages, ahead of broader rules', () => {
    const rs = rules(
      [
        '  - name: emergency\n    match: { called: { regex: "^(112|911)$" } }\n    mode: bypass\n    source_language: de',
        `  - name: all\n    match: {}\n${translate('de', 'en')}`,
      ].join('\n'),
    );
    expect(matchRoute(rs, call({ called: '112' }))).toEqual({
      ruleName: 'emergency',
      calledNumber: '112',
      mode: 'bypass',
      metadata: {},
      recording: false,
    });
    expect(matchRoute(rs, call({ called: '911' })).mode).toBe('bypass');
    expect(matchRoute(rs, call({ called: '1120' })).ruleName).toBe('all');
  });

  it('matches IPv4 and IPv6 source CIDRs, including IPv4-mapped and zoned addresses', () => {
    const rs = rules(
      `  - name: branch\n    match:\n      source: [10.20.0.0/16, "2001:db8:20::/48", "fe80::/10"]\n${translate('fr', 'de')}`,
    );
    for (const ip of ['10.20.3.4', '::ffff:10.20.3.4', '2001:db8:20:ffff::1', 'fe80::1%eth0']) {
      expect(matchRoute(rs, call({ sourceIp: ip })).ruleName, ip).toBe('branch');
    }
    for (const ip of ['10.21.0.1', '2001:db8:21::1', '', 'not-an-ip']) {
      expect(matchRoute(rs, call({ sourceIp: ip })).ruleName, ip).toBe('default');
    }
  });

  it('matches a single IPv6 CIDR string', () => {
    const rs = rules(`  - name: v6\n    match: { source: "2001:db8::/32" }\n${translate('fr', 'de')}`);
    expect(matchRoute(rs, call({ sourceIp: '2001:db8:ffff::1' })).ruleName).toBe('v6');
    expect(matchRoute(rs, call({ sourceIp: '192.0.2.1' })).ruleName).toBe('default');
  });

  it('matches the trunk exactly and not when no trunk is given', () => {
    const rs = rules(`  - name: t\n    match: { trunk: telnyx-eu }\n${translate('de', 'en')}`);
    expect(matchRoute(rs, call({ trunk: 'telnyx-eu' })).ruleName).toBe('t');
    expect(matchRoute(rs, call({ trunk: 'telnyx-us' })).ruleName).toBe('default');
    expect(matchRoute(rs, call()).ruleName).toBe('default');
  });

  it('matches header presence, exact value and regex, with case-insensitive names', () => {
    const rs = rules(
      [
        `  - name: exact\n    match: { header: { name: x-tenant, value: acme } }\n${translate('de', 'en')}`,
        `  - name: regex\n    match: { header: { name: X-Tenant, value: { regex: "^beta-\\\\d+$" } } }\n${translate('de', 'fr')}`,
        `  - name: present\n    match: { header: { name: X-Priority } }\n${translate('de', 'es')}`,
      ].join('\n'),
    );
    expect(matchRoute(rs, call({ headers: { 'X-Tenant': ' acme ' } })).ruleName).toBe('exact');
    expect(matchRoute(rs, call({ headers: { 'x-tenant': 'beta-12' } })).ruleName).toBe('regex');
    expect(matchRoute(rs, call({ headers: { 'x-tenant': 'beta-x' } })).ruleName).toBe('default');
    expect(matchRoute(rs, call({ headers: { 'X-PRIORITY': '' } })).ruleName).toBe('present');
    expect(matchRoute(rs, call({ headers: {} })).ruleName).toBe('default');
  });

  it('requires every condition of a rule to hold', () => {
    const rs = rules(
      `  - name: combo\n    match:\n      called: "+49"\n      source: 10.0.0.0/8\n      trunk: main\n      header: { name: X-Tenant, value: acme }\n${translate('de', 'en')}`,
    );
    const ok = { called: '+4930', sourceIp: '10.1.1.1', trunk: 'main', headers: { 'X-Tenant': 'acme' } };
    expect(matchRoute(rs, call(ok)).ruleName).toBe('combo');
    expect(matchRoute(rs, call({ ...ok, called: '+4330' })).ruleName).toBe('default');
    expect(matchRoute(rs, call({ ...ok, sourceIp: '11.1.1.1' })).ruleName).toBe('default');
    expect(matchRoute(rs, call({ ...ok, trunk: 'other' })).ruleName).toBe('default');
    expect(matchRoute(rs, call({ ...ok, headers: { 'X-Tenant': 'other' } })).ruleName).toBe('default');
  });

  it('takes languages from a header; a missing or invalid value makes the rule not match', () => {
    const rs = rules(
      [
        '  - name: hdr\n    match: {}\n    mode: assistive_translation\n    languages_from_header: X-Kallglot-Languages\n    metadata: { via: header }',
        `  - name: next\n    match: { called: "+1" }\n${translate('en', 'es')}`,
      ].join('\n'),
    );
    const withLangs = (v: string) => matchRoute(rs, call({ headers: { 'X-Kallglot-Languages': v } }));
    expect(withLangs('de-en')).toEqual({
      ruleName: 'hdr',
      calledNumber: '+15550100',
      mode: 'assistive_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
      metadata: { via: 'header' },
      recording: false,
    });
    expect(withLangs(' DE:EN ')).toMatchObject({ ruleName: 'hdr', sourceLanguage: 'de', targetLanguage: 'en' });
    expect(withLangs('pt-br:zh-hans')).toMatchObject({
      ruleName: 'hdr',
      sourceLanguage: 'pt-BR',
      targetLanguage: 'zh-Hans',
    });
    for (const bad of ['pt-BR-en', 'de', 'de-de', 'german-english', 'de:en:fr', '']) {
      expect(withLangs(bad).ruleName, bad).toBe('next');
    }
    expect(matchRoute(rs, call({ called: '+33' })).ruleName).toBe('default');
  });

  it('carries metadata, recording and greeting, and returns fresh objects', () => {
    const rs = rules(
      `  - name: rec\n    match: {}\n${translate('de', 'en')}\n    recording: true\n    metadata: { tenant: acme }\n    greeting: { text: Hallo, language: de }`,
    );
    const a = matchRoute(rs, call());
    expect(a).toMatchObject({
      recording: true,
      metadata: { tenant: 'acme' },
      greeting: { text: 'Hallo', language: 'de' },
    });
    a.metadata.callId = 'x';
    expect(matchRoute(rs, call()).metadata).toEqual({ tenant: 'acme' });
  });

  it('returns a bypass default without languages', () => {
    const rs = rules('  []', 'default:\n  mode: bypass\n  metadata: { reason: no-rule }\n  recording: true\n');
    expect(matchRoute(rs, call())).toEqual({
      ruleName: 'default',
      calledNumber: '+15550100',
      mode: 'bypass',
      metadata: { reason: 'no-rule' },
      recording: true,
    });
  });
});

describe('matchRoute: dial codes', () => {
  const dialRules = () =>
    rules(
      [
        '  - name: emergency\n    match: { called: { regex: "^(112|911)$" } }\n    mode: bypass',
        `  - name: dial-fr\n    dial_code: "*33*"\n    match: {}\n${translate('de', 'fr')}`,
        `  - name: dial-de\n    dial_code: "*49*"\n    match: {}\n${translate('en', 'de')}`,
        `  - name: dial-de-long\n    dial_code: "*49*9*"\n    match: { calling: "+1" }\n${translate('en', 'de')}`,
        `  - name: germany\n    match: { called: "+49" }\n${translate('de', 'en')}`,
        `  - name: dial-es-late\n    dial_code: "#34"\n    match: {}\n${translate('de', 'es')}`,
      ].join('\n'),
    );

  it('strips the dial code, picks its rule and carries the stripped number', () => {
    const d = matchRoute(dialRules(), call({ called: '*49*+4930123456' }));
    expect(d).toEqual({
      ruleName: 'dial-de',
      calledNumber: '+4930123456',
      dialCode: '*49*',
      mode: 'bidirectional_translation',
      sourceLanguage: 'en',
      targetLanguage: 'de',
      metadata: {},
      recording: false,
    });
    expect(matchRoute(dialRules(), call({ called: '*33*+4930123456' }))).toMatchObject({
      ruleName: 'dial-fr',
      calledNumber: '+4930123456',
      targetLanguage: 'fr',
    });
  });

  it('keeps the rest of the number as dialled, dropping separators after the code', () => {
    const d = matchRoute(dialRules(), call({ called: '*49* +49 (30) 123' }));
    expect(d).toMatchObject({ ruleName: 'dial-de', calledNumber: '+49 (30) 123', dialCode: '*49*' });
  });

  it('a rule with a dial code matches only calls dialled with it', () => {
    const d = matchRoute(dialRules(), call({ called: '+4930123456' }));
    expect(d).toMatchObject({ ruleName: 'germany', calledNumber: '+4930123456' });
    expect(d.dialCode).toBeUndefined();
    // A dial code alone is not a number to call: nothing is stripped and no dial-code rule matches.
    expect(matchRoute(dialRules(), call({ called: '*49*' }))).toMatchObject({
      ruleName: 'default',
      calledNumber: '*49*',
    });
  });

  it('strips the longest dial code; that rule must still meet its other conditions', () => {
    const rs = dialRules();
    expect(matchRoute(rs, call({ called: '*49*9*555', calling: '+1212' }))).toMatchObject({
      ruleName: 'dial-de-long',
      calledNumber: '555',
      dialCode: '*49*9*',
    });
    // Stripped all the same: the code is the PBX's dial plan and must never reach Telnyx.
    expect(matchRoute(rs, call({ called: '*49*9*555', calling: '+33' }))).toMatchObject({
      ruleName: 'default',
      calledNumber: '555',
      dialCode: '*49*9*',
    });
  });

  it('keeps file order: an emergency bypass listed first wins over a dial code, a broader rule before it too', () => {
    const rs = dialRules();
    expect(matchRoute(rs, call({ called: '*49*112' }))).toMatchObject({
      ruleName: 'emergency',
      mode: 'bypass',
      calledNumber: '112',
    });
    // `#34` comes after `germany`: the stripped +49 number is germany's.
    expect(matchRoute(rs, call({ called: '#34+4930' }))).toMatchObject({ ruleName: 'germany', calledNumber: '+4930' });
    expect(matchRoute(rs, call({ called: '#34+3491' }))).toMatchObject({
      ruleName: 'dial-es-late',
      calledNumber: '+3491',
    });
  });

  it('applies called conditions of the dial-code rule to the stripped number', () => {
    const rs = rules(
      `  - name: dial-berlin\n    dial_code: "*49*"\n    match: { called: "+4930" }\n${translate('en', 'de')}`,
    );
    expect(matchRoute(rs, call({ called: '*49*+4930111' })).ruleName).toBe('dial-berlin');
    expect(matchRoute(rs, call({ called: '*49*+4989111' }))).toMatchObject({
      ruleName: 'default',
      calledNumber: '+4989111',
    });
  });

  it('drops tel parameters (RFC 4904 tgrp, trunk-context) from the called number', () => {
    const rs = rules(`  - name: exact\n    match: { called: { regex: "^\\\\+4930123$" } }\n${translate('de', 'en')}`);
    expect(matchRoute(rs, call({ called: '+4930123;tgrp=b;trunk-context=pbx.example' }))).toMatchObject({
      ruleName: 'exact',
      calledNumber: '+4930123',
    });
    expect(matchRoute(dialRules(), call({ called: '*49*+4930;tgrp=x' }))).toMatchObject({
      ruleName: 'dial-de',
      calledNumber: '+4930',
    });
  });
});

describe('matchRoute: direction and trunk', () => {
  it('matches direction inbound/outbound; rules without one match both', () => {
    const rs = rules(
      [
        `  - name: from-telnyx\n    match: { direction: inbound }\n${translate('en', 'de')}`,
        `  - name: to-telnyx\n    match: { direction: outbound, called: "+49" }\n${translate('de', 'en')}`,
        `  - name: any\n    match: { called: "+33" }\n${translate('fr', 'en')}`,
      ].join('\n'),
    );
    expect(matchRoute(rs, call({ direction: 'inbound', called: '+4930' })).ruleName).toBe('from-telnyx');
    expect(matchRoute(rs, call({ direction: 'outbound', called: '+4930' })).ruleName).toBe('to-telnyx');
    expect(matchRoute(rs, call({ direction: 'outbound', called: '+331' })).ruleName).toBe('any');
    expect(matchRoute(rs, call({ direction: 'outbound', called: '+1' })).ruleName).toBe('default');
  });

  it('adds the trunk to the metadata, over a rule key of the same name', () => {
    const rs = rules(
      `  - name: t\n    match: { trunk: main }\n${translate('de', 'en')}\n    metadata: { trunk: x, a: b }`,
    );
    expect(matchRoute(rs, call({ trunk: 'main' })).metadata).toEqual({ trunk: 'main', a: 'b' });
    expect(matchRoute(rs, call({ trunk: 'other' })).metadata).toEqual({ trunk: 'other' });
    expect(matchRoute(rs, call()).metadata).toEqual({});
  });
});
