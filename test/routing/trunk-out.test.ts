/**
 * `trunk_out`: a rule (or the default) names the Telnyx trunk of the gateway config its calls go out on. Unknown names
 * are refused at load and on reload when the loader is given the config's trunk names; the decision carries the name.
 * Not to be confused with `trunks` / `match.trunk`, the PBX-side trunk a call comes in on.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { describeRules } from '../../src/routing/describe.ts';
import { parseRules, RulesError } from '../../src/routing/load.ts';
import { matchRoute } from '../../src/routing/match.ts';
import { RoutingStore } from '../../src/routing/store.ts';
import type { CallInfo } from '../../src/routing/types.ts';

const FILE = `trunks:
  - name: eu
    source: 10.1.0.0/16
rules:
  - name: from-eu-branch
    match: { trunk: eu }
    mode: bypass
    trunk_out: telnyx-eu
  - name: german
    match: { called: "+49" }
    mode: bidirectional_translation
    source_language: en
    target_language: de
default:
  mode: bypass
  trunk_out: telnyx-us
`;
const KNOWN = ['default', 'telnyx-eu', 'telnyx-us'];

const call = (over: Partial<CallInfo> = {}): CallInfo => ({
  called: '+4930123',
  calling: '+4989555',
  sourceIp: '127.0.0.1',
  direction: 'outbound',
  headers: () => undefined,
  ...over,
});

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('trunk_out', () => {
  it('reaches the decision of its rule and of the default; rules without one leave it to `default`', () => {
    const rules = parseRules(FILE, 'routing.yaml', { telnyxTrunks: KNOWN });
    expect(matchRoute(rules, call({ trunk: 'eu' }))).toMatchObject({
      ruleName: 'from-eu-branch',
      trunkOut: 'telnyx-eu',
    });
    expect(matchRoute(rules, call())).not.toHaveProperty('trunkOut');
    expect(matchRoute(rules, call({ called: '+331234' }))).toMatchObject({
      ruleName: 'default',
      trunkOut: 'telnyx-us',
    });
    const view = describeRules(rules);
    expect(view.rules.map((r) => r.trunkOut)).toEqual(['telnyx-eu', undefined]);
    expect(view.default.trunkOut).toBe('telnyx-us');
  });

  it('refuses a name the gateway config does not define, naming rule, key and line, and says what trunk_out is', () => {
    const bad = FILE.replace('trunk_out: telnyx-eu', 'trunk_out: eu');
    let err: unknown;
    try {
      parseRules(bad, 'routing.yaml', { telnyxTrunks: KNOWN });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(RulesError);
    const r = err as RulesError;
    expect(r).toMatchObject({ ruleIndex: 0, ruleName: 'from-eu-branch', key: 'trunk_out', line: 8 });
    expect(r.message).toContain(
      '"eu" is not a Telnyx trunk of the gateway config (known: default, telnyx-eu, telnyx-us)',
    );
    expect(r.message).toContain('not one of this file\'s "trunks"');
    expect(() =>
      parseRules(FILE.replace('trunk_out: telnyx-us', 'trunk_out: asia'), 'r.yaml', { telnyxTrunks: KNOWN }),
    ).toThrow(/key "default\.trunk_out": "asia" is not a Telnyx trunk/);
    expect(() => parseRules(FILE.replace('trunk_out: telnyx-us', 'trunk_out: ""'), 'r.yaml')).toThrow(
      /must not be empty/,
    );
  });

  it('takes any name when the loader is not told the config (tools reading the routing file alone)', () => {
    const rules = parseRules(FILE.replace('trunk_out: telnyx-eu', 'trunk_out: whatever'), 'routing.yaml');
    expect(rules.rules[0]?.trunkOut).toBe('whatever');
  });

  it('a reload naming an unknown trunk is refused and the rules in force stay', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-trunk-out-'));
    dirs.push(dir);
    const file = path.join(dir, 'routing.yaml');
    fs.writeFileSync(file, FILE);
    const store = new RoutingStore(file, pino({ level: 'silent' }), { telnyxTrunks: KNOWN });
    expect(store.load().rules[0]?.trunkOut).toBe('telnyx-eu');
    fs.writeFileSync(file, FILE.replace('trunk_out: telnyx-eu', 'trunk_out: telnyx-asia'));
    const outcome = store.tryReload();
    expect(outcome.ok).toBe(false);
    expect(outcome.ok ? '' : outcome.error.message).toContain('"telnyx-asia" is not a Telnyx trunk');
    expect(store.current().rules[0]?.trunkOut).toBe('telnyx-eu');
    store.close();
  });
});
