/**
 * Pick the route for a call: the first rule (in file order) whose conditions all hold, else the default.
 *
 * Number comparison: called/calling numbers and configured prefixes have visual separators (spaces, dashes, dots,
 * parentheses) removed; otherwise comparison is exact. In particular `+49` does NOT match `0049…` or `049…` — the
 * gateway does not guess dialling plans; write a regex such as `^(\+|00)49` if the PBX sends both forms.
 * Regexes see the separator-free number too. Extracting the user part of a SIP URI is the caller's job.
 *
 * Pure and synchronous: no I/O, no logging, never throws on odd call input (it just does not match).
 */
import { cidrContains } from './cidr.ts';
import { parseLanguagePair } from './language.ts';
import { normaliseNumber } from './load.ts';
import {
  DEFAULT_RULE_NAME,
  type CallInfo,
  type CompiledMatch,
  type Greeting,
  type NumberMatcher,
  type RouteDecision,
  type Rule,
  type RuleSet,
  type ValueMatcher,
} from './types.ts';

export type { CallInfo, RouteDecision };

export function matchRoute(rules: RuleSet, call: CallInfo): RouteDecision {
  const called = normaliseNumber(call.called ?? '');
  const calling = normaliseNumber(call.calling ?? '');
  for (const rule of rules.rules) {
    if (!conditionsHold(rule.match, call, called, calling)) continue;
    const decision = decide(rule, call);
    if (decision) return decision;
  }
  const d = rules.default;
  return build(DEFAULT_RULE_NAME, d.mode, d.sourceLanguage, d.targetLanguage, d.metadata, d.recording, d.greeting);
}

function conditionsHold(m: CompiledMatch, call: CallInfo, called: string, calling: string): boolean {
  if (m.called && !numberMatches(m.called, called)) return false;
  if (m.calling && !numberMatches(m.calling, calling)) return false;
  if (m.trunk !== undefined && call.trunk !== m.trunk) return false;
  if (m.source && !cidrContains(m.source, call.sourceIp ?? '')) return false;
  if (m.header) {
    const value = call.headers(m.header.name);
    if (value === undefined) return false;
    if (m.header.value && !valueMatches(m.header.value, value)) return false;
  }
  return true;
}

/** The decision for a rule whose conditions hold, or undefined when a header-supplied language pair is unusable. */
function decide(rule: Rule, call: CallInfo): RouteDecision | undefined {
  let source = rule.sourceLanguage;
  let target = rule.targetLanguage;
  if (rule.languagesFromHeader) {
    const value = call.headers(rule.languagesFromHeader);
    const pair = value === undefined ? undefined : parseLanguagePair(value);
    // A missing or malformed header means this rule cannot say which languages to use: let later rules decide.
    if (!pair) return undefined;
    source = pair.source;
    target = pair.target;
  }
  return build(rule.name, rule.mode, source, target, rule.metadata, rule.recording, rule.greeting);
}

function build(
  ruleName: string,
  mode: RouteDecision['mode'],
  sourceLanguage: string | undefined,
  targetLanguage: string | undefined,
  metadata: Readonly<Record<string, string>>,
  recording: boolean,
  greeting: Greeting | undefined,
): RouteDecision {
  // Fresh objects: callers may add per-call metadata without touching the shared rule set.
  const base = { ruleName, metadata: { ...metadata }, recording, ...(greeting ? { greeting: { ...greeting } } : {}) };
  if (mode === 'bypass') return { ...base, mode };
  const d: RouteDecision = { ...base, mode };
  if (sourceLanguage) d.sourceLanguage = sourceLanguage;
  if (targetLanguage) d.targetLanguage = targetLanguage;
  return d;
}

function numberMatches(m: NumberMatcher, number: string): boolean {
  return m.kind === 'prefix' ? number.startsWith(m.prefix) : m.regex.test(number);
}

function valueMatches(m: ValueMatcher, value: string): boolean {
  return m.kind === 'exact' ? value.trim() === m.value : m.regex.test(value);
}
