/**
 * Typed reading of a parsed YAML document with precise diagnostics. Every failure becomes a RulesError that names
 * the file, the rule (index and name) or `default`, the dotted key and the line/column from the yaml library's
 * node ranges — an operator editing routing rules at 3 a.m. should not have to bisect the file.
 */
import {
  isAlias,
  isMap,
  isScalar,
  isSeq,
  type Document,
  type LineCounter,
  type Node as YamlNode,
  type Pair,
  type YAMLMap,
  type YAMLSeq,
} from 'yaml';
import type { RulesWarning } from './types.ts';

/** Which part of the file a diagnostic is about. */
export type Section =
  | { kind: 'rule'; index: number; name?: string }
  | { kind: 'trunk'; index: number; name?: string }
  | { kind: 'default' }
  | { kind: 'top' };

export interface Ctx {
  section: Section;
  /** Dotted key path inside the section (`match.called.regex`, `match.source[1]`); '' for the section itself. */
  key: string;
}

export interface RulesErrorDetails {
  file: string;
  reason: string;
  line?: number;
  column?: number;
  ruleIndex?: number;
  ruleName?: string;
  trunkIndex?: number;
  trunkName?: string;
  /** `default` for the default section; otherwise the dotted key path. */
  key?: string;
}

export class RulesError extends Error {
  override name = 'RulesError';
  readonly file: string;
  readonly reason: string;
  readonly line: number | undefined;
  readonly column: number | undefined;
  readonly ruleIndex: number | undefined;
  readonly ruleName: string | undefined;
  readonly trunkIndex: number | undefined;
  readonly trunkName: string | undefined;
  readonly key: string | undefined;

  constructor(d: RulesErrorDetails) {
    super(formatRulesError(d));
    this.file = d.file;
    this.reason = d.reason;
    this.line = d.line;
    this.column = d.column;
    this.ruleIndex = d.ruleIndex;
    this.ruleName = d.ruleName;
    this.trunkIndex = d.trunkIndex;
    this.trunkName = d.trunkName;
    this.key = d.key;
  }
}

function formatRulesError(d: RulesErrorDetails): string {
  let where = `routing rules ${d.file}`;
  if (d.line !== undefined) where += `, line ${d.line}${d.column !== undefined ? `, column ${d.column}` : ''}`;
  const parts: string[] = [];
  if (d.ruleIndex !== undefined)
    parts.push(`rules[${d.ruleIndex}]${d.ruleName !== undefined ? ` ("${d.ruleName}")` : ''}`);
  if (d.trunkIndex !== undefined)
    parts.push(`trunks[${d.trunkIndex}]${d.trunkName !== undefined ? ` ("${d.trunkName}")` : ''}`);
  if (d.key) parts.push(`key "${d.key}"`);
  return `${where}: ${parts.length ? `${parts.join(', ')}: ` : ''}${d.reason}`;
}

export function child(ctx: Ctx, key: string | number): Ctx {
  const k = typeof key === 'number' ? `[${key}]` : ctx.key ? `.${key}` : key;
  return { section: ctx.section, key: ctx.key + k };
}

export interface Entry {
  key: string;
  keyNode: YamlNode;
  /** The value node; null for an explicitly empty value in some flow forms. */
  value: YamlNode | null;
}

export class DocReader {
  readonly file: string;
  readonly text: string;
  readonly doc: Document;
  readonly lines: LineCounter;
  /** Collected by warn(): problems that do not refuse the file. */
  readonly warnings: RulesWarning[] = [];

  constructor(file: string, text: string, doc: Document, lines: LineCounter) {
    this.file = file;
    this.text = text;
    this.doc = doc;
    this.lines = lines;
  }

  lineOf(node: unknown): number | undefined {
    const start = rangeOf(node)?.[0];
    return start === undefined ? undefined : this.lines.linePos(start).line;
  }

  fail(node: unknown, ctx: Ctx, reason: string): never {
    throw new RulesError(this.#details(node, ctx, reason));
  }

  /** Record a problem that does not refuse the file, located and worded like an error. */
  warn(node: unknown, ctx: Ctx, reason: string): void {
    const d = this.#details(node, ctx, reason);
    this.warnings.push({
      message: formatRulesError(d),
      reason,
      ...(d.line !== undefined && { line: d.line }),
      ...(d.ruleIndex !== undefined && { ruleIndex: d.ruleIndex }),
      ...(d.ruleName !== undefined && { ruleName: d.ruleName }),
      ...(d.key !== undefined && { key: d.key }),
    });
  }

  #details(node: unknown, ctx: Ctx, reason: string): RulesErrorDetails {
    const start = rangeOf(node)?.[0];
    const pos = start === undefined ? undefined : this.lines.linePos(start);
    const s = ctx.section;
    const key = s.kind === 'default' ? (ctx.key ? `default.${ctx.key}` : 'default') : ctx.key;
    return {
      file: this.file,
      reason,
      line: pos?.line,
      column: pos?.col,
      ruleIndex: s.kind === 'rule' ? s.index : undefined,
      ruleName: s.kind === 'rule' ? s.name : undefined,
      trunkIndex: s.kind === 'trunk' ? s.index : undefined,
      trunkName: s.kind === 'trunk' ? s.name : undefined,
      key: key || undefined,
    };
  }

  resolve(node: unknown): unknown {
    return isAlias(node) ? node.resolve(this.doc) : node;
  }

  /** The original source text of a node, to echo what the operator wrote. */
  source(node: unknown): string {
    const r = rangeOf(node);
    return r ? this.text.slice(r[0], r[1]) : '';
  }

  map(node: unknown, ctx: Ctx, what = 'a mapping'): YAMLMap {
    const n = this.resolve(node);
    if (isMap(n)) return n;
    return this.fail(node, ctx, `must be ${what}${describe(n)}`);
  }

  seq(node: unknown, ctx: Ctx, what = 'a list'): YAMLSeq {
    const n = this.resolve(node);
    if (isSeq(n)) return n;
    return this.fail(node, ctx, `must be ${what}${describe(n)}`);
  }

  /** Keys of a mapping, rejecting non-string keys and (unless `allowed` is null) keys outside `allowed`. */
  entries(map: YAMLMap, ctx: Ctx, allowed: readonly string[] | null): Map<string, Entry> {
    const out = new Map<string, Entry>();
    for (const item of map.items as Array<Pair<unknown, unknown>>) {
      const entry = this.entryOf(item);
      if (!entry)
        return this.fail(item.key, ctx, `keys must be strings, got ${this.source(item.key) || String(item.key)}`);
      if (allowed && !allowed.includes(entry.key)) {
        this.fail(entry.keyNode, child(ctx, entry.key), `unknown key "${entry.key}" (allowed: ${allowed.join(', ')})`);
      }
      out.set(entry.key, entry);
    }
    return out;
  }

  /** The entry for a mapping pair, or undefined when its key is not a string. */
  entryOf(pair: Pair<unknown, unknown>): Entry | undefined {
    const keyNode = this.resolve(pair.key);
    if (!isScalar(keyNode) || typeof keyNode.value !== 'string') return undefined;
    return { key: keyNode.value, keyNode: keyNode as YamlNode, value: (pair.value ?? null) as YamlNode | null };
  }

  /** A non-empty string. Numbers are rejected with a hint: YAML reads an unquoted `+49` as the integer 49. */
  string(entry: Entry, ctx: Ctx): string {
    const at = entry.value ?? entry.keyNode;
    const n = this.resolve(entry.value);
    // A leading `*` makes YAML read an alias (`dial_code: *49*`, `called: *21#`), which resolves to nothing.
    if (isAlias(entry.value) && n === undefined) {
      const src = this.source(entry.value);
      return this.fail(at, ctx, `must be a string, but YAML reads ${src} as an alias (*name); quote it: "${src}"`);
    }
    if (isScalar(n) && typeof n.value === 'string') {
      if (n.value.trim() === '') this.fail(at, ctx, 'must not be empty');
      return n.value;
    }
    if (isScalar(n) && (typeof n.value === 'number' || typeof n.value === 'bigint' || typeof n.value === 'boolean')) {
      const src = this.source(n);
      return this.fail(at, ctx, `must be a string, but YAML reads ${src} as a ${typeof n.value}; quote it: "${src}"`);
    }
    return this.fail(at, ctx, `must be a string${describe(n)}`);
  }

  boolean(entry: Entry, ctx: Ctx): boolean {
    const n = this.resolve(entry.value);
    if (isScalar(n) && typeof n.value === 'boolean') return n.value;
    return this.fail(entry.value ?? entry.keyNode, ctx, `must be true or false${describe(n)}`);
  }

  isString(entry: Entry): boolean {
    const n = this.resolve(entry.value);
    return isScalar(n) && typeof n.value === 'string';
  }

  isMapping(entry: Entry): boolean {
    return isMap(this.resolve(entry.value));
  }

  /** `key:` with nothing after it. */
  isEmpty(entry: Entry): boolean {
    const n = this.resolve(entry.value);
    return n === null || n === undefined || (isScalar(n) && n.value === null);
  }
}

function rangeOf(node: unknown): readonly [number, number, number] | undefined {
  const r = (node as { range?: unknown } | null | undefined)?.range;
  return Array.isArray(r) ? (r as unknown as [number, number, number]) : undefined;
}

function describe(n: unknown): string {
  if (n === null || n === undefined || (isScalar(n) && n.value === null)) return ', but it is empty';
  if (isMap(n)) return ', got a mapping';
  if (isSeq(n)) return ', got a list';
  if (isScalar(n)) return `, got ${typeof n.value} ${JSON.stringify(n.value)}`;
  return '';
}
