/**
 * Which of the file's `trunks` a call arrived on: the first trunk (in file order) whose conditions all hold.
 *
 * Trunk-group labels (`tgrp`) are looked for where PBXs put them: RFC 4904 `tgrp` on the Request-URI (in the user
 * part's tel parameters, `sip:+4930123;tgrp=b;trunk-context=pbx.example@gw`, or as a URI parameter), on the Contact
 * URI (the originating trunk group), on the From URI, and the older `otg` on From (as a URI or header parameter). A
 * trunk's `tgrp` matches when any label found does: PBXs differ in where they write it, not in what it means.
 *
 * Pure and synchronous like matchRoute: garbled URIs and headers just contribute no label, they never throw.
 */
import { parseNameAddr } from '../sip/syntax/address.ts';
import { parseUri, type SipUri } from '../sip/syntax/uri.ts';
import { cidrContains } from './cidr.ts';
import { headerHolds, valueMatches } from './match.ts';
import type { RuleSet } from './types.ts';

/** The facts of a call a trunk can be recognised by; InboundCall holds every one of them. */
export interface TrunkFacts {
  /** The PBX's source address. */
  sourceIp: string;
  /** The Request-URI as received. */
  requestUri: string;
  /** The raw From header value. */
  from: string;
  /** Header lookup with the contract of CallInfo.headers (lower-cased names, case-insensitive); Contact is read here. */
  headers: (name: string) => string | undefined;
}

/** The name of the call's trunk, or undefined when no trunk's conditions hold (or the file defines none). */
export function identifyTrunk(rules: RuleSet, facts: TrunkFacts): string | undefined {
  let labels: string[] | undefined; // parsed once, and only when a trunk asks for them
  for (const trunk of rules.trunks) {
    if (trunk.source && !cidrContains(trunk.source, facts.sourceIp ?? '')) continue;
    if (trunk.header && !headerHolds(trunk.header, facts.headers)) continue;
    if (trunk.tgrp) {
      labels ??= trunkGroupLabels(facts);
      const tgrp = trunk.tgrp;
      if (!labels.some((label) => valueMatches(tgrp, label))) continue;
    }
    return trunk.name;
  }
  return undefined;
}

/** Every trunk-group label the INVITE carries, in the order listed in the file comment. */
export function trunkGroupLabels(facts: Pick<TrunkFacts, 'requestUri' | 'from' | 'headers'>): string[] {
  const out: string[] = [];
  const ruri = uriOrUndefined(facts.requestUri);
  if (ruri) out.push(...uriParams(ruri, ['tgrp']));
  const contact = addressOrUndefined(facts.headers('contact'));
  if (contact) out.push(...uriParams(contact.uri, ['tgrp']));
  const from = addressOrUndefined(facts.from);
  if (from) {
    out.push(...uriParams(from.uri, ['tgrp', 'otg']));
    for (const name of ['tgrp', 'otg']) {
      const v = from.params[name];
      if (v) out.push(unquote(v));
    }
  }
  return out.map(percentDecoded).filter((l) => l !== '');
}

/** The named parameters of a URI: in the user part's tel parameters first, then after the host. */
function uriParams(uri: SipUri, names: readonly string[]): string[] {
  const out: string[] = [];
  const userParams = (uri.user ?? '').split(';').slice(1);
  for (const p of userParams) {
    const eq = p.indexOf('=');
    if (eq > 0 && names.includes(p.slice(0, eq).toLowerCase())) out.push(p.slice(eq + 1));
  }
  for (const name of names) {
    const v = uri.params[name];
    if (v) out.push(v);
  }
  return out;
}

function uriOrUndefined(text: string): SipUri | undefined {
  try {
    return parseUri(text.trim());
  } catch {
    return undefined;
  }
}

/** The first address of a header value (Contact may list several, comma-separated). */
function addressOrUndefined(value: string | undefined): ReturnType<typeof parseNameAddr> | undefined {
  if (!value) return undefined;
  for (const text of [value, value.split(',')[0] ?? '']) {
    try {
      return parseNameAddr(text);
    } catch {
      // try the first element alone
    }
  }
  return undefined;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** URI parameters may be %-escaped (RFC 3261 §19.1.2); a label compares by its characters. */
function percentDecoded(v: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
}
