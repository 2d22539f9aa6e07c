/**
 * The routing examples operators copy from: config/routing.yaml (as shipped, and with its commented examples
 * uncommented) and the README's routing section all load, without warnings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadRules, parseRules } from '../../src/routing/load.ts';

const SHIPPED = path.join(import.meta.dirname, '../../config/routing.yaml');

it('the shipped config/routing.yaml loads without warnings', () => {
  expect(loadRules(SHIPPED).warnings).toEqual([]);
});

it('the commented trunks and dial-code examples in config/routing.yaml load when uncommented', () => {
  let text = fs.readFileSync(SHIPPED, 'utf8');
  text = text.replace(/^# trunks:\n(?:# {3}.*\n)+/m, (m) => m.replace(/^# /gm, ''));
  text = text.replace(/^ {2}# - name: dial-german\n(?: {2}# .*\n)+/m, (m) => m.replace(/^ {2}# /gm, '  '));
  const rs = parseRules(text, 'routing.yaml');
  expect(rs.trunks.map((t) => t.name)).toEqual(['branch-lyon', 'carrier-b', 'hq']);
  expect(rs.rules.filter((r) => r.dialCode).map((r) => [r.name, r.dialCode])).toEqual([
    ['dial-german', '*49*'],
    ['dial-french-on-carrier-b', '*33*'],
  ]);
  expect(rs.warnings).toEqual([]);
});

it("the README's routing example loads, without warnings", () => {
  const readme = fs.readFileSync(path.join(import.meta.dirname, '../../README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Routing rules'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  expect(block).toBeDefined();
  const rs = parseRules(block ?? '', 'README.md');
  expect(rs.trunks.map((t) => t.name)).toEqual(['branch-b', 'carrier-2', 'hq']);
  expect(rs.rules.find((r) => r.dialCode)?.name).toBe('dial-german');
  expect(rs.warnings).toEqual([]);
});
