/**
 * Plain-JSON views of the compiled rules and of a refused rules file, for the operator API. The compiled form holds
 * RegExps and BlockLists that JSON.stringify would turn into `{}`, so the views spell every condition out again.
 */
import { RulesError } from './reader.ts';
import type {
  CompiledMatch,
  DefaultRoute,
  HeaderCondition,
  NumberMatcher,
  Rule,
  RuleSet,
  Trunk,
  ValueMatcher,
} from './types.ts';

export interface RuleView {
  name: string;
  index: number;
  line?: number;
  mode: string;
  sourceLanguage?: string;
  targetLanguage?: string;
  languagesFromHeader?: string;
  dialCode?: string;
  /** Every condition of the rule, e.g. `{ called: "+49", source: ["10.0.0.0/8"] }`; `{}` matches every call. */
  match: Record<string, unknown>;
  recording: boolean;
  greeting: boolean;
  /** The Telnyx trunk (gateway config) the rule's calls go out on; absent: `default`. */
  trunkOut?: string;
  /** The loader's warnings about this rule (e.g. a greeting calls from the PBX never hear); absent when none. */
  warnings?: string[];
}

export interface TrunkView {
  name: string;
  index: number;
  line?: number;
  /** The trunk's conditions, spelled like a rule's match. */
  match: Record<string, unknown>;
}

export interface DefaultView {
  mode: string;
  sourceLanguage?: string;
  targetLanguage?: string;
  recording: boolean;
  greeting: boolean;
  trunkOut?: string;
}

export interface RulesErrorView {
  message: string;
  file?: string;
  line?: number;
  column?: number;
  ruleIndex?: number;
  ruleName?: string;
  key?: string;
  reason?: string;
  trunkIndex?: number;
  trunkName?: string;
}

export function describeRules(set: RuleSet): {
  file: string;
  trunks: TrunkView[];
  rules: RuleView[];
  default: DefaultView;
} {
  return {
    file: set.file,
    trunks: set.trunks.map(describeTrunk),
    rules: set.rules.map((r) => describeRule(r, set)),
    default: describeDefault(set.default),
  };
}

function describeTrunk(t: Trunk): TrunkView {
  const match: Record<string, unknown> = {};
  if (t.source) match.source = [...t.source.cidrs];
  if (t.tgrp) match.tgrp = valueText(t.tgrp);
  if (t.header) match.header = headerText(t.header);
  return { name: t.name, index: t.index, ...(t.line !== undefined && { line: t.line }), match };
}

function describeRule(rule: Rule, set: RuleSet): RuleView {
  const warnings = set.warnings.filter((w) => w.ruleIndex === rule.index).map((w) => w.reason);
  return {
    name: rule.name,
    index: rule.index,
    ...(rule.line !== undefined && { line: rule.line }),
    mode: rule.mode,
    ...(rule.sourceLanguage !== undefined && { sourceLanguage: rule.sourceLanguage }),
    ...(rule.targetLanguage !== undefined && { targetLanguage: rule.targetLanguage }),
    ...(rule.languagesFromHeader !== undefined && { languagesFromHeader: rule.languagesFromHeader }),
    ...(rule.dialCode !== undefined && { dialCode: rule.dialCode }),
    match: describeMatch(rule.match),
    recording: rule.recording,
    greeting: rule.greeting !== undefined,
    ...(rule.trunkOut !== undefined && { trunkOut: rule.trunkOut }),
    ...(warnings.length > 0 && { warnings }),
  };
}

function describeDefault(d: DefaultRoute): DefaultView {
  return {
    mode: d.mode,
    ...(d.sourceLanguage !== undefined && { sourceLanguage: d.sourceLanguage }),
    ...(d.targetLanguage !== undefined && { targetLanguage: d.targetLanguage }),
    recording: d.recording,
    greeting: d.greeting !== undefined,
    ...(d.trunkOut !== undefined && { trunkOut: d.trunkOut }),
  };
}

function describeMatch(m: CompiledMatch): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (m.called) out.called = numberText(m.called);
  if (m.calling) out.calling = numberText(m.calling);
  if (m.source) out.source = [...m.source.cidrs];
  if (m.trunk !== undefined) out.trunk = m.trunk;
  if (m.header) out.header = headerText(m.header);
  if (m.direction !== undefined) out.direction = m.direction;
  return out;
}

function headerText(h: HeaderCondition): Record<string, string> {
  return { name: h.name, ...(h.value && { value: valueText(h.value) }) };
}

/** Prefixes as written; regexes in slashes so the two read differently. */
function numberText(m: NumberMatcher): string {
  return m.kind === 'prefix' ? m.prefix : `/${m.regex.source}/`;
}

function valueText(m: ValueMatcher): string {
  return m.kind === 'exact' ? m.value : `/${m.regex.source}/`;
}

/** A refused file's error with the loader's details (file, rule, key, line) as separate fields. */
export function describeRulesError(err: Error): RulesErrorView {
  if (!(err instanceof RulesError)) return { message: err.message };
  return {
    message: err.message,
    file: err.file,
    reason: err.reason,
    ...(err.line !== undefined && { line: err.line }),
    ...(err.column !== undefined && { column: err.column }),
    ...(err.ruleIndex !== undefined && { ruleIndex: err.ruleIndex }),
    ...(err.ruleName !== undefined && { ruleName: err.ruleName }),
    ...(err.trunkIndex !== undefined && { trunkIndex: err.trunkIndex }),
    ...(err.trunkName !== undefined && { trunkName: err.trunkName }),
    ...(err.key !== undefined && { key: err.key }),
  };
}
