/**
 * What a Telnyx trunk does to the numbers and Request-URIs it sends: national and international numbers become
 * E.164 (its `numberFormat`), and its tech prefix goes in front of the Request-URI user part, which is how Telnyx
 * picks an IP connection. Pure functions, so the call flow, the CLI and tests all see the same rewriting.
 */
import type { NumberFormat, TelnyxTrunk } from '../config/trunks.ts';
import { fillUriTemplate } from './policy.ts';

/** Visual separators a PBX or a person may put in a number; never part of it. */
const SEPARATORS = /[\s\-.()]/g;

/**
 * Shorter national numbers are left as dialled: emergency and service numbers (112, 116117) and extensions are not
 * national subscriber numbers, and +49112 would not reach the emergency service.
 */
const MIN_NATIONAL_DIGITS = 6;

/**
 * The number in E.164 (`+4930123456`) per the trunk's format: `+…` stays (separators dropped), the international
 * prefix (`00…`) becomes `+`, the national prefix (`0…`) becomes `+<country code>`. Anything else — no format, not a
 * number (`anonymous`, `sipp`), a short number — is returned as it was.
 */
export function toE164(number: string, format: NumberFormat | undefined): string {
  if (!format?.countryCode) return number;
  const n = number.replace(SEPARATORS, '');
  if (!/^\+?[0-9]+$/.test(n)) return number;
  if (n.startsWith('+')) return n;
  const { internationalPrefix: intl, nationalPrefix: national, countryCode } = format;
  // The international prefix first: it is the longer one where both start alike (00 vs 0).
  if (intl && n.startsWith(intl) && n.length > intl.length) return `+${n.slice(intl.length)}`;
  if (n.startsWith(national) && n.length - national.length >= MIN_NATIONAL_DIGITS)
    return `+${countryCode}${n.slice(national.length)}`;
  return number;
}

/**
 * `sip:+4930…@host` → `sip:<prefix>+4930…@host`; a URI without a user part is left alone (nothing to prefix). A `#`
 * is escaped (%23): RFC 3261 does not allow it bare in a user part, and Telnyx reads the escaped form as `#`.
 */
export function withTechPrefix(uri: string, prefix: string): string {
  if (!prefix) return uri;
  const escaped = prefix.replace(/#/g, '%23');
  return uri.replace(/^(sips?:)([^@;?]+@)/i, (_m, scheme: string, user: string) => `${scheme}${escaped}${user}`);
}

/** The numbers of a call as the URI templates see them (`{called}`, `{calling}`), before any trunk rewriting. */
export interface CallNumbers {
  called: string;
  calling: string;
}

/** The numbers as this trunk sends them. */
export function trunkNumbers(trunk: TelnyxTrunk, numbers: CallNumbers): CallNumbers {
  return { called: toE164(numbers.called, trunk.numberFormat), calling: toE164(numbers.calling, trunk.numberFormat) };
}

/**
 * The Request-URI of a leg on this trunk: its template (translated or direct) filled with its domain and its
 * numbers, and its tech prefix in front of the user part.
 */
export function trunkUri(
  trunk: TelnyxTrunk,
  which: 'translated' | 'direct',
  numbers: CallNumbers,
  extra: Record<string, string> = {},
): string {
  const template = which === 'translated' ? trunk.translatedUriTemplate : trunk.directUriTemplate;
  const values = { domain: trunk.sipDomain, ...trunkNumbers(trunk, numbers), ...extra };
  return withTechPrefix(fillUriTemplate(template, values), trunk.techPrefix);
}
