import { describe, expect, it } from 'vitest';
import { parseRules } from '../../src/routing/load.ts';
import { identifyTrunk, trunkGroupLabels, type TrunkFacts } from '../../src/routing/trunk.ts';
import type { RuleSet } from '../../src/routing/types.ts';

const DEFAULT = 'default:\n  mode: bypass\n';

function trunks(yaml: string): RuleSet {
  return parseRules(`trunks:\n${yaml}\n${DEFAULT}`, 'trunks.yaml');
}

function facts(over: Partial<Omit<TrunkFacts, 'headers'>> & { headers?: Record<string, string> } = {}): TrunkFacts {
  const headers = over.headers ?? {};
  return {
    sourceIp: over.sourceIp ?? '192.0.2.10',
    requestUri: over.requestUri ?? 'sip:+4930123@gw.example',
    from: over.from ?? '<sip:100@pbx.example>;tag=a',
    headers: (name) => Object.entries(headers).find(([k]) => k.toLowerCase() === name.toLowerCase())?.[1],
  };
}

describe('identifyTrunk', () => {
  it('names the trunk by IPv4 and IPv6 source CIDRs, IPv4-mapped included', () => {
    const rs = trunks(
      [
        '  - name: branch-a',
        '    source: 10.10.0.0/16',
        '  - name: branch-b',
        '    source: ["2001:db8:b::/48", 198.51.100.7]',
      ].join('\n'),
    );
    expect(identifyTrunk(rs, facts({ sourceIp: '10.10.3.4' }))).toBe('branch-a');
    expect(identifyTrunk(rs, facts({ sourceIp: '::ffff:10.10.3.4' }))).toBe('branch-a');
    expect(identifyTrunk(rs, facts({ sourceIp: '2001:db8:b:1::5' }))).toBe('branch-b');
    expect(identifyTrunk(rs, facts({ sourceIp: '198.51.100.7' }))).toBe('branch-b');
    expect(identifyTrunk(rs, facts({ sourceIp: '198.51.100.8' }))).toBeUndefined();
    expect(identifyTrunk(rs, facts({ sourceIp: '' }))).toBeUndefined();
  });

  it('names the trunk by RFC 4904 tgrp on the Request-URI, in the user part or as a URI parameter', () => {
    const rs = trunks('  - name: tg7\n    tgrp: TG-7\n');
    expect(
      identifyTrunk(rs, facts({ requestUri: 'sip:+4930123;tgrp=TG-7;trunk-context=pbx.example@gw;user=phone' })),
    ).toBe('tg7');
    expect(identifyTrunk(rs, facts({ requestUri: 'sip:+4930123@gw.example;tgrp=TG-7' }))).toBe('tg7');
    expect(identifyTrunk(rs, facts({ requestUri: 'tel:+4930123;tgrp=TG-7;trunk-context=pbx.example' }))).toBe('tg7');
    expect(identifyTrunk(rs, facts({ requestUri: 'sip:+4930123;tgrp=TG-8@gw' }))).toBeUndefined();
  });

  it('names the trunk by tgrp on Contact and From, and by the older otg on From', () => {
    const rs = trunks('  - name: tg7\n    tgrp: TG-7\n');
    expect(
      identifyTrunk(rs, facts({ headers: { Contact: '<sip:100;tgrp=TG-7;trunk-context=x@10.0.0.1:5060>' } })),
    ).toBe('tg7');
    expect(identifyTrunk(rs, facts({ from: '"Desk" <sip:100@pbx.example;otg=TG-7>;tag=1' }))).toBe('tg7');
    expect(identifyTrunk(rs, facts({ from: '<sip:100@pbx.example>;tag=1;otg=TG-7' }))).toBe('tg7');
    expect(identifyTrunk(rs, facts({ from: '<sip:100;tgrp=TG-7@pbx.example>;tag=1' }))).toBe('tg7');
    expect(identifyTrunk(rs, facts({ from: '<sip:100@pbx.example;otg=TG%2D7>;tag=1' }))).toBe('tg7'); // %-escaped
    expect(identifyTrunk(rs, facts({ from: '<sip:100@pbx.example;otg=TG-8>;tag=1' }))).toBeUndefined();
  });

  it('matches a tgrp regex, and lists the labels found in order', () => {
    const rs = trunks('  - name: any-eu\n    tgrp: { regex: "^eu-" }\n');
    expect(identifyTrunk(rs, facts({ requestUri: 'sip:1;tgrp=eu-3@gw' }))).toBe('any-eu');
    expect(
      trunkGroupLabels(
        facts({
          requestUri: 'sip:1;tgrp=r@gw',
          from: '<sip:1@p;otg=f>;tgrp=h',
          headers: { contact: '<sip:c@p;tgrp=c>, <sip:d@p;tgrp=d>' },
        }),
      ),
    ).toEqual(['r', 'c', 'f', 'h']);
  });

  it('names the trunk by a header: presence, exact value and regex, names case-insensitive', () => {
    const rs = trunks(
      [
        '  - name: exact',
        '    header: { name: X-Trunk, value: lyon }',
        '  - name: pattern',
        '    header: { name: x-trunk, value: { regex: "^par" } }',
        '  - name: present',
        '    header: { name: P-Trunk-Id }',
      ].join('\n'),
    );
    expect(identifyTrunk(rs, facts({ headers: { 'x-trunk': ' lyon ' } }))).toBe('exact');
    expect(identifyTrunk(rs, facts({ headers: { 'X-TRUNK': 'paris-2' } }))).toBe('pattern');
    expect(identifyTrunk(rs, facts({ headers: { 'p-trunk-id': '' } }))).toBe('present');
    expect(identifyTrunk(rs, facts({ headers: { 'x-trunk': 'nice' } }))).toBeUndefined();
  });

  it('takes the first trunk in file order whose conditions all hold', () => {
    const rs = trunks(
      [
        '  - name: both',
        '    source: 10.0.0.0/8',
        '    tgrp: a',
        '  - name: by-source',
        '    source: 10.0.0.0/8',
        '  - name: by-tgrp',
        '    tgrp: a',
      ].join('\n'),
    );
    expect(identifyTrunk(rs, facts({ sourceIp: '10.1.1.1', requestUri: 'sip:1;tgrp=a@gw' }))).toBe('both');
    expect(identifyTrunk(rs, facts({ sourceIp: '10.1.1.1', requestUri: 'sip:1;tgrp=b@gw' }))).toBe('by-source');
    expect(identifyTrunk(rs, facts({ sourceIp: '11.1.1.1', requestUri: 'sip:1;tgrp=a@gw' }))).toBe('by-tgrp');
  });

  it('never throws on garbled URIs and headers, and names nothing without a trunks section', () => {
    const rs = trunks('  - name: t\n    tgrp: a\n');
    const garbled = facts({ requestUri: 'not a uri', from: '<<<', headers: { contact: '"unterminated' } });
    expect(identifyTrunk(rs, garbled)).toBeUndefined();
    expect(identifyTrunk(parseRules(DEFAULT, 'f'), facts({ requestUri: 'sip:1;tgrp=a@gw' }))).toBeUndefined();
  });
});
