/**
 * Pick the route for a call: the first rule (in file order) whose conditions all hold, else the default.
 *
 * Number comparison: called/calling numbers and configured prefixes have visual separators (spaces, dashes, dots,
 * parentheses) removed; otherwise comparison is exact. In particular `+49` does NOT match `0049…` or `049…` — the
 * gateway does not guess dialling plans; write a regex such as `^(\+|00)49` if the PBX sends both forms.
 * Regexes see the separator-free number too. Extracting the user part of a SIP URI is the caller's job; tel
 * parameters left in it (`+4930123;tgrp=b;trunk-context=pbx.example`, RFC 4904) are dropped here.
 *
 * Dial codes: when the dialled number starts with a rule's `dial_code` (the longest one, if several do), the code is
 * stripped before ANY rule is tried, so every rule, and the rest of the call (`decision.calledNumber`), sees the
 * number without it; a rule with a dial code then matches only calls dialled with that code. Rules keep their file
 * order: an emergency bypass listed first still catches `*49*112`, and a dial-code rule must come before broader
 * rules that would otherwise catch the stripped number.
 *
 * Pure and synchronous: no I/O, no logging, never throws on odd call input (it just does not match).
 */
import { cidrContains } from './cidr.ts';
import { isNumberSeparator, normaliseNumber } from './conditions.ts';
import { parseLanguagePair } from './language.ts';
import {
  DEFAULT_RULE_NAME,
  type CallInfo,
  type CompiledMatch,
  type Greeting,
  type HeaderCondition,
  type NumberMatcher,
  type RouteDecision,
  type Rule,
  type RuleSet,
  type ValueMatcher,
} from './types.ts';

export type { CallInfo, RouteDecision };

export function matchRoute(rules: RuleSet, call: CallInfo): RouteDecision {
  const dialled = withoutTelParams(call.called ?? '');
  const dialCode = dialCodeOf(rules, normaliseNumber(dialled));
  const number: CalledNumber = {
    calledNumber: dialCode === undefined ? dialled : stripDialCode(dialled, dialCode),
    ...(dialCode !== undefined && { dialCode }),
  };
  const called = normaliseNumber(number.calledNumber);
  const calling = normaliseNumber(call.calling ?? '');
  for (const rule of rules.rules) {
    if (rule.dialCode !== undefined && rule.dialCode !== dialCode) continue;
    if (!conditionsHold(rule.match, call, called, calling)) continue;
    const decision = decide(rule, call, number);
    if (decision) return decision;
  }
  const d = rules.default;
  const { metadata, recording, greeting, trunkOut } = d;
  return build(DEFAULT_RULE_NAME, d.mode, d.sourceLanguage, d.targetLanguage, {
    metadata,
    recording,
    greeting,
    trunkOut,
    call,
    number,
  });
}

/** What matching did to the dialled number. */
interface CalledNumber {
  calledNumber: string;
  dialCode?: string;
}

/** `+4930123;tgrp=b;trunk-context=x` → `+4930123`: a number never contains `;`, tel parameters follow it. */
function withoutTelParams(user: string): string {
  const semi = user.indexOf(';');
  return semi === -1 ? user : user.slice(0, semi);
}

/** The longest dial code of any rule that prefixes the number and leaves a number behind. */
function dialCodeOf(rules: RuleSet, number: string): string | undefined {
  let best: string | undefined;
  for (const rule of rules.rules) {
    const code = rule.dialCode;
    if (code === undefined || number.length <= code.length || !number.startsWith(code)) continue;
    if (best === undefined || code.length > best.length) best = code;
  }
  return best;
}

/** The dialled number without the dial code, as the PBX wrote the rest (separators between the two dropped). */
function stripDialCode(dialled: string, code: string): string {
  let seen = 0;
  let i = 0;
  for (; i < dialled.length && seen < code.length; i++) if (!isNumberSeparator(dialled.charAt(i))) seen++;
  while (i < dialled.length && isNumberSeparator(dialled.charAt(i))) i++;
  return dialled.slice(i);
}

function conditionsHold(m: CompiledMatch, call: CallInfo, called: string, calling: string): boolean {
  if (m.direction !== undefined && call.direction !== m.direction) return false;
  if (m.called && !numberMatches(m.called, called)) return false;
  if (m.calling && !numberMatches(m.calling, calling)) return false;
  if (m.trunk !== undefined && call.trunk !== m.trunk) return false;
  if (m.source && !cidrContains(m.source, call.sourceIp ?? '')) return false;
  if (m.header && !headerHolds(m.header, call.headers)) return false;
  return true;
}

/** The decision for a rule whose conditions hold, or undefined when a header-supplied language pair is unusable. */
function decide(rule: Rule, call: CallInfo, number: CalledNumber): RouteDecision | undefined {
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
  const { metadata, recording, greeting, trunkOut } = rule;
  return build(rule.name, rule.mode, source, target, { metadata, recording, greeting, trunkOut, call, number });
}

/** What a decision carries besides its rule, mode and languages. */
interface DecisionParts {
  metadata: Readonly<Record<string, string>>;
  recording: boolean;
  greeting?: Greeting | undefined;
  trunkOut?: string | undefined;
  call: CallInfo;
  number: CalledNumber;
}

function build(
  ruleName: string,
  mode: RouteDecision['mode'],
  sourceLanguage: string | undefined,
  targetLanguage: string | undefined,
  p: DecisionParts,
): RouteDecision {
  // Fresh objects: callers may add per-call metadata without touching the shared rule set. The trunk is a fact of
  // the call, so it wins over a rule's own `trunk` metadata key.
  const metadata = { ...p.metadata, ...(p.call.trunk !== undefined && { trunk: p.call.trunk }) };
  const base = {
    ruleName,
    ...p.number,
    metadata,
    recording: p.recording,
    ...(p.greeting ? { greeting: { ...p.greeting } } : {}),
    ...(p.trunkOut !== undefined && { trunkOut: p.trunkOut }),
  };
  if (mode === 'bypass') return { ...base, mode };
  const d: RouteDecision = { ...base, mode };
  if (sourceLanguage) d.sourceLanguage = sourceLanguage;
  if (targetLanguage) d.targetLanguage = targetLanguage;
  return d;
}

function numberMatches(m: NumberMatcher, number: string): boolean {
  return m.kind === 'prefix' ? number.startsWith(m.prefix) : m.regex.test(number);
}

/** The header is present and, when the condition has a value, matches it. */
export function headerHolds(h: HeaderCondition, headers: CallInfo['headers']): boolean {
  const value = headers(h.name);
  if (value === undefined) return false;
  return !h.value || valueMatches(h.value, value);
}

export function valueMatches(m: ValueMatcher, value: string): boolean {
  return m.kind === 'exact' ? value.trim() === m.value : m.regex.test(value);
}
