/**
 * The `trunks` section of a rules file: named trunks, each defined by the PBX's source addresses, an RFC 4904
 * trunk-group label and/or a header. Rules refer to them by name (`match: { trunk: NAME }`), so the section is read
 * before the rules and a rule naming a trunk the file does not define is refused.
 */
import { headerCondition, sourceCondition, valueMatcher } from './conditions.ts';
import { child, type Ctx, type DocReader, type Entry, type Section } from './reader.ts';
import type { Trunk } from './types.ts';

const TRUNK_KEYS = ['name', 'source', 'tgrp', 'header'] as const;

export function parseTrunks(r: DocReader, entry: Entry | undefined): Trunk[] {
  // `trunks:` with every trunk commented out is an empty list, not an error.
  if (!entry || r.isEmpty(entry)) return [];
  const seq = r.seq(entry.value, { section: { kind: 'top' }, key: 'trunks' });
  const firstIndexByName = new Map<string, number>();
  return seq.items.map((item, index) => parseTrunk(r, item, index, firstIndexByName));
}

function parseTrunk(r: DocReader, node: unknown, index: number, firstIndexByName: Map<string, number>): Trunk {
  const section: Section = { kind: 'trunk', index };
  const ctx: Ctx = { section, key: '' };
  const map = r.map(node, ctx, 'a mapping (name, and source, tgrp and/or header)');
  // Read the name first so that every later error can name the trunk.
  const nameEntry = map.items.map((p) => r.entryOf(p)).find((en) => en?.key === 'name');
  if (nameEntry) {
    const name = r.string(nameEntry, child(ctx, 'name')).trim();
    section.name = name;
    const first = firstIndexByName.get(name);
    if (first !== undefined)
      r.fail(nameEntry.value, child(ctx, 'name'), `duplicate trunk name "${name}" (already used by trunks[${first}])`);
    firstIndexByName.set(name, index);
  }
  const e = r.entries(map, ctx, TRUNK_KEYS);
  if (!section.name) return r.fail(map, child(ctx, 'name'), 'missing required key "name"');
  const source = e.get('source');
  const tgrp = e.get('tgrp');
  const header = e.get('header');
  // A trunk without conditions would name every call: almost certainly an unfinished edit.
  if (!source && !tgrp && !header) r.fail(map, ctx, 'a trunk needs at least one of source, tgrp, header');
  return {
    name: section.name,
    index,
    ...(r.lineOf(map) !== undefined && { line: r.lineOf(map) }),
    ...(source && { source: sourceCondition(r, source, child(ctx, 'source')) }),
    ...(tgrp && { tgrp: valueMatcher(r, tgrp, child(ctx, 'tgrp')) }),
    ...(header && { header: headerCondition(r, header, child(ctx, 'header')) }),
  };
}

/**
 * `trunk_out` of a rule or the default: the Telnyx trunk (from the gateway config, not the `trunks` section above)
 * the call goes out on. `known` lists the config's trunk names; without it (a tool reading the file alone) any name
 * is taken, and the daemon, which always knows them, refuses the file on start-up and on reload.
 */
export function parseTrunkOut(r: DocReader, entry: Entry, ctx: Ctx, known: readonly string[] | undefined): string {
  const name = r.string(entry, ctx).trim();
  if (known && !known.includes(name)) {
    r.fail(
      entry.value,
      ctx,
      `"${name}" is not a Telnyx trunk of the gateway config (known: ${known.join(', ')}); trunk_out names a ` +
        'trunk from telnyx.trunks in GATEWAY_CONFIG, not one of this file\'s "trunks" (those name where calls come from)',
    );
  }
  return name;
}
