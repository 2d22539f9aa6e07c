/**
 * Load and validate a routing rules file (YAML, or JSON which is parsed by the same YAML 1.2 parser so that errors
 * carry line numbers either way). Everything is checked and compiled up front — regexes, CIDRs, language codes — so
 * that matching a call can never fail on configuration.
 */
import fs from 'node:fs';
import { LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { compileCidrs, parseCidr, type ParsedCidr } from './cidr.ts';
import { canonicalLanguage } from './language.ts';
import { child, DocReader, RulesError, type Ctx, type Entry, type Section } from './reader.ts';
import {
  DEFAULT_RULE_NAME,
  MODES,
  type CompiledMatch,
  type DefaultRoute,
  type Greeting,
  type Mode,
  type NumberMatcher,
  type Rule,
  type RuleSet,
  type ValueMatcher,
} from './types.ts';

export { RulesError };

const TOP_KEYS = ['rules', 'default'] as const;
const RULE_KEYS = [
  'name',
  'match',
  'mode',
  'source_language',
  'target_language',
  'languages_from_header',
  'metadata',
  'recording',
  'greeting',
] as const;
const DEFAULT_KEYS = ['mode', 'source_language', 'target_language', 'metadata', 'recording', 'greeting'] as const;
const MATCH_KEYS = ['called', 'calling', 'source', 'trunk', 'header'] as const;
const REGEX_KEYS = ['regex'] as const;
const HEADER_KEYS = ['name', 'value'] as const;
const GREETING_KEYS = ['text', 'language'] as const;

/** Characters people put in phone numbers for readability; stripped before any number comparison. */
const NUMBER_SEPARATORS = /[\s\-.()]/g;
const NUMBER_PREFIX = /^\+?[0-9*#]+$/;
/** RFC 3261 token: what a SIP header name may consist of. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export function normaliseNumber(n: string): string {
  return n.replace(NUMBER_SEPARATORS, '');
}

/** Read and validate a rules file. Throws RulesError (naming file, rule, key and line) on any problem. */
export function loadRules(path: string): RuleSet {
  return parseRules(readRulesFile(path), path);
}

/** The file's text; a RulesError when it cannot be read. */
export function readRulesFile(path: string): string {
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (err) {
    throw new RulesError({ file: path, reason: `cannot read file: ${(err as Error).message}` });
  }
}

/** Validate rules given as text; `file` is only used in diagnostics and recorded in the RuleSet. */
export function parseRules(text: string, file: string): RuleSet {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true });
  const parseError = doc.errors[0];
  if (parseError) {
    const pos = parseError.linePos?.[0];
    // The library appends " at line N, column M:" plus a code frame; we report the position ourselves.
    const reason = parseError.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
    throw new RulesError({ file, reason: `syntax error: ${reason}`, line: pos?.line, column: pos?.col });
  }
  const r: DocReader = new DocReader(file, text, doc, lines); // annotated: lets r.fail() narrow
  const top: Ctx = { section: { kind: 'top' }, key: '' };
  if (doc.contents === null) r.fail(null, top, 'file is empty; expected a mapping with "rules" and "default"');
  const root = r.map(doc.contents, top, 'a mapping with "rules" and "default"');
  const entries = r.entries(root, top, TOP_KEYS);

  const defaultEntry = entries.get('default');
  if (!defaultEntry)
    r.fail(root, child(top, 'default'), 'missing required key "default" (the route for calls no rule matches)');
  const defaultRoute = parseDefault(r, defaultEntry);

  const rules: Rule[] = [];
  const rulesEntry = entries.get('rules');
  // `rules:` with every rule commented out is an empty list, not an error.
  if (rulesEntry && !r.isEmpty(rulesEntry)) {
    const seq = r.seq(rulesEntry.value, child(top, 'rules'));
    const firstIndexByName = new Map<string, number>();
    for (const [index, item] of seq.items.entries()) rules.push(parseRule(r, item, index, firstIndexByName));
  }
  return { file, rules, default: defaultRoute };
}

function parseRule(r: DocReader, node: unknown, index: number, firstIndexByName: Map<string, number>): Rule {
  const section: Section = { kind: 'rule', index };
  const ctx: Ctx = { section, key: '' };
  const map = r.map(node, ctx, 'a mapping (name, match, mode, ...)');
  // Read the name before complaining about anything else so that every later error can name the rule.
  const entry = map.items.map((p) => r.entryOf(p)).find((en) => en?.key === 'name');
  if (entry) {
    const name = r.string(entry, child(ctx, 'name')).trim();
    section.name = name;
    if (name === DEFAULT_RULE_NAME)
      r.fail(entry.value, child(ctx, 'name'), `"${DEFAULT_RULE_NAME}" is reserved for the default route`);
    const first = firstIndexByName.get(name);
    if (first !== undefined)
      r.fail(entry.value, child(ctx, 'name'), `duplicate rule name "${name}" (already used by rules[${first}])`);
    firstIndexByName.set(name, index);
  }
  const e = r.entries(map, ctx, RULE_KEYS);
  if (!section.name) r.fail(map, child(ctx, 'name'), 'missing required key "name"');
  const matchEntry = e.get('match');
  if (!matchEntry)
    r.fail(map, child(ctx, 'match'), 'missing required key "match" (use "match: {}" to match every call)');

  const mode = parseMode(r, map, e, ctx);
  const langs = parseLanguages(r, map, e, ctx, mode);
  let languagesFromHeader: string | undefined;
  const lfh = e.get('languages_from_header');
  if (lfh) {
    const c = child(ctx, 'languages_from_header');
    const header = headerName(r, lfh, c);
    if (mode === 'bypass') r.fail(lfh.value, c, 'has no effect with mode bypass; remove it');
    if (langs.sourceLanguage || langs.targetLanguage) {
      r.fail(lfh.value, c, 'cannot be combined with source_language/target_language; the header supplies both');
    }
    languagesFromHeader = header.toLowerCase();
  } else if (mode !== 'bypass') {
    requireLanguages(r, map, ctx, langs);
  }
  return {
    name: section.name,
    index,
    line: r.lineOf(map),
    match: parseMatch(r, matchEntry, child(ctx, 'match')),
    mode,
    ...(mode === 'bypass' ? {} : langs),
    ...(languagesFromHeader ? { languagesFromHeader } : {}),
    ...common(r, e, ctx),
  };
}

function parseDefault(r: DocReader, entry: Entry): DefaultRoute {
  const ctx: Ctx = { section: { kind: 'default' }, key: '' };
  const map = r.map(entry.value ?? entry.keyNode, ctx, 'a mapping (mode, source_language, ...)');
  const e = r.entries(map, ctx, DEFAULT_KEYS);
  const mode = parseMode(r, map, e, ctx);
  const langs = parseLanguages(r, map, e, ctx, mode);
  if (mode !== 'bypass') requireLanguages(r, map, ctx, langs);
  return { mode, ...(mode === 'bypass' ? {} : langs), ...common(r, e, ctx) };
}

function parseMode(r: DocReader, map: YAMLMap, e: Map<string, Entry>, ctx: Ctx): Mode {
  const c = child(ctx, 'mode');
  const entry = e.get('mode');
  if (!entry) return r.fail(map, c, `missing required key "mode" (one of ${MODES.join(', ')})`);
  const mode = r.string(entry, c);
  if (!(MODES as readonly string[]).includes(mode))
    r.fail(entry.value, c, `"${mode}" is not a mode; use one of ${MODES.join(', ')}`);
  return mode as Mode;
}

interface Languages {
  sourceLanguage?: string;
  targetLanguage?: string;
}

function parseLanguages(r: DocReader, map: YAMLMap, e: Map<string, Entry>, ctx: Ctx, mode: Mode): Languages {
  const out: Languages = {};
  const src = e.get('source_language');
  const dst = e.get('target_language');
  if (src) out.sourceLanguage = language(r, src, child(ctx, 'source_language'));
  if (dst) out.targetLanguage = language(r, dst, child(ctx, 'target_language'));
  if (mode !== 'bypass' && out.sourceLanguage && out.sourceLanguage === out.targetLanguage) {
    r.fail(
      dst?.value ?? map,
      child(ctx, 'target_language'),
      `source_language and target_language are both "${out.sourceLanguage}"`,
    );
  }
  return out;
}

function requireLanguages(r: DocReader, map: YAMLMap, ctx: Ctx, langs: Languages): void {
  for (const [key, value] of [
    ['source_language', langs.sourceLanguage],
    ['target_language', langs.targetLanguage],
  ] as const) {
    if (!value) r.fail(map, child(ctx, key), `missing required key "${key}" (required unless mode is bypass)`);
  }
}

function language(r: DocReader, entry: Entry, ctx: Ctx): string {
  const raw = r.string(entry, ctx);
  const code = canonicalLanguage(raw);
  if (!code)
    return r.fail(entry.value, ctx, `"${raw}" is not a valid language code (expected e.g. de, en, pt-BR, zh-Hans)`);
  return code;
}

/** metadata, recording, greeting: shared by rules and the default. */
function common(
  r: DocReader,
  e: Map<string, Entry>,
  ctx: Ctx,
): { metadata: Record<string, string>; recording: boolean; greeting?: Greeting } {
  const metadata: Record<string, string> = {};
  const m = e.get('metadata');
  if (m && !r.isEmpty(m)) {
    const mc = child(ctx, 'metadata');
    const map = r.map(m.value, mc, 'a mapping of string keys to string values');
    for (const entry of r.entries(map, mc, null).values()) metadata[entry.key] = r.string(entry, child(mc, entry.key));
  }
  const rec = e.get('recording');
  const recording = rec ? r.boolean(rec, child(ctx, 'recording')) : false;
  const g = e.get('greeting');
  if (!g) return { metadata, recording };
  const gc = child(ctx, 'greeting');
  const gmap = r.map(g.value ?? g.keyNode, gc, 'a mapping with text and language');
  const ge = r.entries(gmap, gc, GREETING_KEYS);
  const text = ge.get('text');
  const lang = ge.get('language');
  if (!text) r.fail(gmap, child(gc, 'text'), 'missing required key "text"');
  if (!lang) r.fail(gmap, child(gc, 'language'), 'missing required key "language"');
  return {
    metadata,
    recording,
    greeting: { text: r.string(text, child(gc, 'text')), language: language(r, lang, child(gc, 'language')) },
  };
}

function parseMatch(r: DocReader, entry: Entry, ctx: Ctx): CompiledMatch {
  const map = r.map(entry.value ?? entry.keyNode, ctx, 'a mapping of conditions (use "match: {}" to match every call)');
  const e = r.entries(map, ctx, MATCH_KEYS);
  const out: {
    called?: NumberMatcher;
    calling?: NumberMatcher;
    source?: CompiledMatch['source'];
    trunk?: string;
    header?: CompiledMatch['header'];
  } = {};
  for (const key of ['called', 'calling'] as const) {
    const ne = e.get(key);
    if (ne) out[key] = numberMatcher(r, ne, child(ctx, key));
  }
  const src = e.get('source');
  if (src) out.source = compileCidrs(cidrList(r, src, child(ctx, 'source')));
  const trunk = e.get('trunk');
  if (trunk) out.trunk = r.string(trunk, child(ctx, 'trunk'));
  const header = e.get('header');
  if (header) {
    const hc = child(ctx, 'header');
    const hmap = r.map(header.value ?? header.keyNode, hc, 'a mapping with name and optional value');
    const he = r.entries(hmap, hc, HEADER_KEYS);
    const name = he.get('name');
    if (!name) r.fail(hmap, child(hc, 'name'), 'missing required key "name"');
    const value = he.get('value');
    out.header = {
      name: headerName(r, name, child(hc, 'name')).toLowerCase(),
      ...(value ? { value: valueMatcher(r, value, child(hc, 'value')) } : {}),
    };
  }
  return out;
}

function numberMatcher(r: DocReader, entry: Entry, ctx: Ctx): NumberMatcher {
  if (r.isMapping(entry)) return { kind: 'regex', regex: regex(r, entry, ctx) };
  const raw = r.string(entry, ctx);
  const prefix = normaliseNumber(raw);
  if (!NUMBER_PREFIX.test(prefix)) {
    r.fail(
      entry.value,
      ctx,
      `"${raw}" is not a number prefix (digits with an optional leading +, e.g. "+49"); use { regex: ... } for patterns`,
    );
  }
  return { kind: 'prefix', prefix };
}

function valueMatcher(r: DocReader, entry: Entry, ctx: Ctx): ValueMatcher {
  if (r.isMapping(entry)) return { kind: 'regex', regex: regex(r, entry, ctx) };
  return { kind: 'exact', value: r.string(entry, ctx).trim() };
}

/** `{ regex: '...' }`, compiled once. Unanchored, like RegExp.test — write ^...$ to match a whole value. */
function regex(r: DocReader, entry: Entry, ctx: Ctx): RegExp {
  const map = r.map(entry.value ?? entry.keyNode, ctx, 'a string or { regex: "..." }');
  const e = r.entries(map, ctx, REGEX_KEYS);
  const re = e.get('regex');
  const rc = child(ctx, 'regex');
  if (!re) return r.fail(map, rc, 'missing required key "regex"');
  const source = r.string(re, rc);
  try {
    return new RegExp(source);
  } catch (err) {
    return r.fail(
      re.value,
      rc,
      `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`,
    );
  }
}

function cidrList(r: DocReader, entry: Entry, ctx: Ctx): ParsedCidr[] {
  const items: Array<{ entry: Entry; ctx: Ctx }> = [];
  if (r.isString(entry)) {
    items.push({ entry, ctx });
  } else {
    const seq = r.seq(entry.value ?? entry.keyNode, ctx, 'a CIDR string or a list of CIDRs');
    if (seq.items.length === 0) r.fail(seq, ctx, 'must list at least one CIDR');
    seq.items.forEach((item, i) => {
      items.push({
        entry: { key: entry.key, keyNode: entry.keyNode, value: item as Entry['value'] },
        ctx: child(ctx, i),
      });
    });
  }
  return items.map(({ entry: it, ctx: c }) => {
    const parsed = parseCidr(r.string(it, c));
    if (typeof parsed === 'string') return r.fail(it.value, c, `invalid CIDR: ${parsed}`);
    return parsed;
  });
}

function headerName(r: DocReader, entry: Entry, ctx: Ctx): string {
  const name = r.string(entry, ctx).trim();
  if (!HEADER_NAME.test(name)) r.fail(entry.value, ctx, `"${name}" is not a valid SIP header name`);
  return name;
}
