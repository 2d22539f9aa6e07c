/**
 * Reading and compiling the conditions a rule's `match` and a trunk may hold: number prefixes and regexes, CIDR
 * lists, header conditions, trunk names, direction and dial codes. Shared by the rules and the `trunks` section so
 * that a condition means the same, and fails the same way, wherever it is written.
 */
import { compileCidrs, parseCidr, type ParsedCidr } from './cidr.ts';
import { child, type Ctx, type DocReader, type Entry } from './reader.ts';
import {
  DIRECTIONS,
  type CidrSet,
  type CompiledMatch,
  type Direction,
  type HeaderCondition,
  type NumberMatcher,
  type ValueMatcher,
} from './types.ts';

const MATCH_KEYS = ['called', 'calling', 'source', 'trunk', 'header', 'direction'] as const;
const REGEX_KEYS = ['regex'] as const;
const HEADER_KEYS = ['name', 'value'] as const;

/** Characters people put in phone numbers for readability; stripped before any number comparison. */
const NUMBER_SEPARATORS = /[\s\-.()]/g;
const NUMBER_PREFIX = /^\+?[0-9*#]+$/;
/** What an agent can key in on a phone before the number: `*49*`, `#7`, `0`. */
const DIAL_CODE = /^[0-9*#]+$/;
/** RFC 3261 token: what a SIP header name may consist of. */
const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+$/;

export function normaliseNumber(n: string): string {
  return n.replace(NUMBER_SEPARATORS, '');
}

/** True for the characters normaliseNumber removes. */
export function isNumberSeparator(ch: string): boolean {
  return /^[\s\-.()]$/.test(ch);
}

/** A rule's `match`; `trunks` are the names the file's `trunks` section defines. */
export function parseMatch(r: DocReader, entry: Entry, ctx: Ctx, trunks: ReadonlySet<string>): CompiledMatch {
  const map = r.map(entry.value ?? entry.keyNode, ctx, 'a mapping of conditions (use "match: {}" to match every call)');
  const e = r.entries(map, ctx, MATCH_KEYS);
  const out: {
    called?: NumberMatcher;
    calling?: NumberMatcher;
    source?: CidrSet;
    trunk?: string;
    header?: HeaderCondition;
    direction?: Direction;
  } = {};
  for (const key of ['called', 'calling'] as const) {
    const ne = e.get(key);
    if (ne) out[key] = numberMatcher(r, ne, child(ctx, key));
  }
  const src = e.get('source');
  if (src) out.source = sourceCondition(r, src, child(ctx, 'source'));
  const trunk = e.get('trunk');
  if (trunk) out.trunk = trunkName(r, trunk, child(ctx, 'trunk'), trunks);
  const header = e.get('header');
  if (header) out.header = headerCondition(r, header, child(ctx, 'header'));
  const direction = e.get('direction');
  if (direction) out.direction = directionOf(r, direction, child(ctx, 'direction'));
  return out;
}

function trunkName(r: DocReader, entry: Entry, ctx: Ctx, trunks: ReadonlySet<string>): string {
  const name = r.string(entry, ctx).trim();
  if (!trunks.has(name)) {
    const known = trunks.size ? `trunks defined: ${[...trunks].join(', ')}` : 'the file has no "trunks" section';
    r.fail(entry.value, ctx, `unknown trunk "${name}" (${known})`);
  }
  return name;
}

function directionOf(r: DocReader, entry: Entry, ctx: Ctx): Direction {
  const value = r.string(entry, ctx).trim();
  if (!(DIRECTIONS as readonly string[]).includes(value)) {
    r.fail(
      entry.value,
      ctx,
      `"${value}" is not a direction; use inbound (calls from Telnyx) or outbound (calls from the PBX)`,
    );
  }
  return value as Direction;
}

/** `dial_code: "*49*"`: what the agent keys in before the number. */
export function dialCode(r: DocReader, entry: Entry, ctx: Ctx): string {
  const raw = r.string(entry, ctx).trim();
  if (!DIAL_CODE.test(raw)) r.fail(entry.value, ctx, `"${raw}" is not a dial code (digits, * and #, e.g. "*49*")`);
  return raw;
}

/** `{ name, value? }`: the header must be present, and match `value` when given. */
export function headerCondition(r: DocReader, entry: Entry, ctx: Ctx): HeaderCondition {
  const hmap = r.map(entry.value ?? entry.keyNode, ctx, 'a mapping with name and optional value');
  const he = r.entries(hmap, ctx, HEADER_KEYS);
  const name = he.get('name');
  if (!name) r.fail(hmap, child(ctx, 'name'), 'missing required key "name"');
  const value = he.get('value');
  return {
    name: headerName(r, name, child(ctx, 'name')).toLowerCase(),
    ...(value ? { value: valueMatcher(r, value, child(ctx, 'value')) } : {}),
  };
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

/** An exact value (surrounding whitespace ignored) or `{ regex }`. */
export function valueMatcher(r: DocReader, entry: Entry, ctx: Ctx): ValueMatcher {
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

/** A CIDR string or a list of them, compiled into one set. */
export function sourceCondition(r: DocReader, entry: Entry, ctx: Ctx): CidrSet {
  return compileCidrs(cidrList(r, entry, ctx));
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

export function headerName(r: DocReader, entry: Entry, ctx: Ctx): string {
  const name = r.string(entry, ctx).trim();
  if (!HEADER_NAME.test(name)) r.fail(entry.value, ctx, `"${name}" is not a valid SIP header name`);
  return name;
}
