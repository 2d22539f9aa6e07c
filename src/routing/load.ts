/**
 * Load and validate a routing rules file (YAML, or JSON which is parsed by the same YAML 1.2 parser so that errors
 * carry line numbers either way). Everything is checked and compiled up front — regexes, CIDRs, language codes — so
 * that matching a call can never fail on configuration.
 */
import fs from 'node:fs';
import { LineCounter, parseDocument, type YAMLMap } from 'yaml';
import { dialCode, headerName, parseMatch } from './conditions.ts';
import { canonicalLanguage } from './language.ts';
import { parseTrunkOut, parseTrunks } from './load-trunks.ts';
import { child, DocReader, RulesError, type Ctx, type Entry, type Section } from './reader.ts';
import {
  DEFAULT_RULE_NAME,
  MODES,
  type DefaultRoute,
  type Greeting,
  type Mode,
  type Rule,
  type RuleSet,
} from './types.ts';

export { RulesError };

const TOP_KEYS = ['trunks', 'rules', 'default'] as const;
const RULE_KEYS = [
  'name',
  'match',
  'mode',
  'source_language',
  'target_language',
  'languages_from_header',
  'dial_code',
  'metadata',
  'recording',
  'greeting',
  'trunk_out',
] as const;
const DEFAULT_KEYS = [
  'mode',
  'source_language',
  'target_language',
  'metadata',
  'recording',
  'greeting',
  'trunk_out',
] as const;
const GREETING_KEYS = ['text', 'language'] as const;

export interface RulesOptions {
  /**
   * The Telnyx trunk names of the gateway config (`default` and telnyx.trunks): a `trunk_out` naming another is an
   * error. Absent: any name is taken (tools that read the routing file without the gateway config).
   */
  telnyxTrunks?: readonly string[];
}

/** Read and validate a rules file. Throws RulesError (naming file, rule, key and line) on any problem. */
export function loadRules(path: string, opts: RulesOptions = {}): RuleSet {
  return parseRules(readRulesFile(path), path, opts);
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
export function parseRules(text: string, file: string, opts: RulesOptions = {}): RuleSet {
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
  const defaultRoute = parseDefault(r, defaultEntry, opts.telnyxTrunks);
  const trunks = parseTrunks(r, entries.get('trunks'));
  const trunkNames = new Set(trunks.map((t) => t.name));

  const rules: Rule[] = [];
  const rulesEntry = entries.get('rules');
  // `rules:` with every rule commented out is an empty list, not an error.
  if (rulesEntry && !r.isEmpty(rulesEntry)) {
    const seq = r.seq(rulesEntry.value, child(top, 'rules'));
    const seen = { names: new Map<string, number>(), trunks: trunkNames, telnyxTrunks: opts.telnyxTrunks };
    for (const [index, item] of seq.items.entries()) rules.push(parseRule(r, item, index, seen));
  }
  return { file, trunks, rules, default: defaultRoute, warnings: r.warnings };
}

interface RuleContext {
  /** Rule names already read, with their index: names must be unique. */
  names: Map<string, number>;
  /** Trunk names the file defines: `match.trunk` must name one. */
  trunks: ReadonlySet<string>;
  /** Telnyx trunk names of the gateway config: `trunk_out` must name one (absent: not checked). */
  telnyxTrunks: readonly string[] | undefined;
}

function parseRule(r: DocReader, node: unknown, index: number, seen: RuleContext): Rule {
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
    const first = seen.names.get(name);
    if (first !== undefined)
      r.fail(entry.value, child(ctx, 'name'), `duplicate rule name "${name}" (already used by rules[${first}])`);
    seen.names.set(name, index);
  }
  const e = r.entries(map, ctx, RULE_KEYS);
  if (!section.name) r.fail(map, child(ctx, 'name'), 'missing required key "name"');
  const matchEntry = e.get('match');
  if (!matchEntry)
    r.fail(map, child(ctx, 'match'), 'missing required key "match" (use "match: {}" to match every call)');

  const mode = parseMode(r, map, e, ctx);
  const langs = parseLanguages(r, map, e, ctx, mode);
  const languagesFromHeader = parseLanguagesFromHeader(r, map, e, ctx, mode, langs);
  const match = parseMatch(r, matchEntry, child(ctx, 'match'), seen.trunks);
  const dial = e.get('dial_code');
  const shared = common(r, e, ctx, seen.telnyxTrunks);
  const greeting = e.get('greeting');
  // A warning, not an error: rules serve both paths, and on calls from Telnyx (TeXML) the greeting is spoken. Only
  // the calls from the PBX ignore it (SIP has no media of ours to speak into), and refusing the file would break
  // rule files that greet TeXML callers. `direction: inbound` says the rule is meant for those and silences it.
  if (greeting && match.direction !== 'inbound') {
    r.warn(
      greeting.keyNode,
      child(ctx, 'greeting'),
      'greeting is spoken only on calls from Telnyx (TeXML, direction inbound); calls from the PBX that match this ' +
        'rule get no greeting. Add "direction: inbound" to the match or remove the greeting',
    );
  }
  return {
    name: section.name,
    index,
    line: r.lineOf(map),
    match,
    mode,
    ...(mode === 'bypass' ? {} : langs),
    ...(languagesFromHeader ? { languagesFromHeader } : {}),
    ...(dial ? { dialCode: dialCode(r, dial, child(ctx, 'dial_code')) } : {}),
    ...shared,
  };
}

/** The lower-cased header that supplies the languages, or undefined; requires fixed languages without it. */
function parseLanguagesFromHeader(
  r: DocReader,
  map: YAMLMap,
  e: Map<string, Entry>,
  ctx: Ctx,
  mode: Mode,
  langs: Languages,
): string | undefined {
  const lfh = e.get('languages_from_header');
  if (!lfh) {
    if (mode !== 'bypass') requireLanguages(r, map, ctx, langs);
    return undefined;
  }
  const c = child(ctx, 'languages_from_header');
  const header = headerName(r, lfh, c);
  if (mode === 'bypass') r.fail(lfh.value, c, 'has no effect with mode bypass; remove it');
  if (langs.sourceLanguage || langs.targetLanguage) {
    r.fail(lfh.value, c, 'cannot be combined with source_language/target_language; the header supplies both');
  }
  return header.toLowerCase();
}

function parseDefault(r: DocReader, entry: Entry, telnyxTrunks: readonly string[] | undefined): DefaultRoute {
  const ctx: Ctx = { section: { kind: 'default' }, key: '' };
  const map = r.map(entry.value ?? entry.keyNode, ctx, 'a mapping (mode, source_language, ...)');
  const e = r.entries(map, ctx, DEFAULT_KEYS);
  const mode = parseMode(r, map, e, ctx);
  const langs = parseLanguages(r, map, e, ctx, mode);
  if (mode !== 'bypass') requireLanguages(r, map, ctx, langs);
  return { mode, ...(mode === 'bypass' ? {} : langs), ...common(r, e, ctx, telnyxTrunks) };
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

/** metadata, recording, trunk_out, greeting: shared by rules and the default. */
function common(
  r: DocReader,
  e: Map<string, Entry>,
  ctx: Ctx,
  telnyxTrunks: readonly string[] | undefined,
): { metadata: Record<string, string>; recording: boolean; trunkOut?: string; greeting?: Greeting } {
  const metadata: Record<string, string> = {};
  const m = e.get('metadata');
  if (m && !r.isEmpty(m)) {
    const mc = child(ctx, 'metadata');
    const map = r.map(m.value, mc, 'a mapping of string keys to string values');
    for (const entry of r.entries(map, mc, null).values()) metadata[entry.key] = r.string(entry, child(mc, entry.key));
  }
  const rec = e.get('recording');
  const recording = rec ? r.boolean(rec, child(ctx, 'recording')) : false;
  const out = e.get('trunk_out');
  const trunkOut = out && parseTrunkOut(r, out, child(ctx, 'trunk_out'), telnyxTrunks);
  const g = e.get('greeting');
  if (!g) return { metadata, recording, ...(trunkOut && { trunkOut }) };
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
    ...(trunkOut && { trunkOut }),
    greeting: { text: r.string(text, child(gc, 'text')), language: language(r, lang, child(gc, 'language')) },
  };
}
