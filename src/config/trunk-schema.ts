/**
 * The schema keys of the Telnyx trunks, spread into `telnyx` by schema.ts: the number format, tech prefix and limits
 * of the trunk the top-level TELNYX_* settings form (named `default`), and `telnyx.trunks`, the further named trunks
 * a config file may list (file only: a list of mappings has no sensible env form; trunks.ts reads and checks it).
 * Kept apart so the schema file stays readable and the trunk settings stay together.
 */

/** Digits written unquoted in YAML or JSON arrive as a number, leading zeros lost (00 is 0): refuse, say why. */
function notText(val: unknown): string | undefined {
  if (typeof val === 'number')
    return 'must be quoted: unquoted digits are read as a number, leading zeros lost (00 is 0)';
  return typeof val === 'string' ? undefined : 'must be text';
}

/** Digits and `*`/`#`: what a Telnyx IP connection matches at the start of the Request-URI's user part. */
export function techPrefixProblem(val: unknown): string | undefined {
  if (typeof val !== 'string') return notText(val);
  if (val !== '' && !/^[0-9*#]{1,16}$/.test(val)) return 'must be up to 16 digits, * or # (e.g. 1234 or 1234#)';
  return undefined;
}

/** An E.164 country calling code (1 to 3 digits, no leading 0), or empty for "no number normalisation". */
export function countryCodeProblem(val: unknown): string | undefined {
  // `countryCode: 49` is a number in YAML, and unambiguous: a country code has no leading zero.
  if (typeof val === 'number' && Number.isInteger(val) && val > 0 && val < 1000) return undefined;
  if (typeof val !== 'string') return notText(val);
  if (val !== '' && !/^[1-9][0-9]{0,2}$/.test(val)) return 'must be a country calling code such as 49 or 1 (no +)';
  return undefined;
}

/** A dialling prefix (national trunk prefix such as 0, international prefix such as 00): digits, possibly none. */
export function dialPrefixProblem(val: unknown): string | undefined {
  if (typeof val !== 'string') return notText(val);
  if (!/^[0-9]{0,4}$/.test(val)) return 'must be up to 4 digits, e.g. 0 or 00 (empty: none)';
  return undefined;
}

/** A convict format function from a problem function: throws the problem. */
function format(problem: (val: unknown) => string | undefined): (val: unknown) => void {
  return (val) => {
    const p = problem(val);
    if (p) throw new Error(p);
  };
}

export const telnyxTrunkSchema = {
  techPrefix: {
    doc: 'Tech prefix put in front of the Request-URI user part of every INVITE toward Telnyx (translated and direct), for IP connections that pick the connection by it; empty: none',
    format: format(techPrefixProblem),
    default: '',
    env: 'TELNYX_TECH_PREFIX',
  },
  numberFormat: {
    countryCode: {
      doc: 'Country calling code for turning national numbers into E.164 on this trunk (e.g. 49: 030123 becomes +4930123); empty: numbers go as the PBX sent them',
      format: format(countryCodeProblem),
      default: '',
      env: 'TELNYX_COUNTRY_CODE',
    },
    nationalPrefix: {
      doc: 'National trunk prefix replaced by +<country code> (empty: every other number of 6 or more digits is national)',
      format: format(dialPrefixProblem),
      default: '0',
      env: 'TELNYX_NATIONAL_PREFIX',
    },
    internationalPrefix: {
      doc: 'International call prefix replaced by + (e.g. 00, or 011 in North America; empty: none)',
      format: format(dialPrefixProblem),
      default: '00',
      env: 'TELNYX_INTERNATIONAL_PREFIX',
    },
  },
  maxCallsPerSecond: {
    // Telnyx's documented default: 20 INVITEs per second per source IP and per credential; the excess earns 503 P05.
    doc: 'INVITEs per second sent on this Telnyx trunk, fallback INVITEs included; an INVITE over it waits up to 1 s for a slot, then fails locally with 503 (0: no limit)',
    format: 'nat',
    default: 20,
    env: 'TELNYX_MAX_CALLS_PER_SECOND',
  },
  maxConcurrent: {
    doc: 'Calls at once on this Telnyx trunk (INVITEs in progress and answered calls); an INVITE over it waits up to 1 s, then fails locally with 503 (0: no limit)',
    format: 'nat',
    default: 0,
    env: 'TELNYX_MAX_CONCURRENT_CALLS',
  },
  trunks: {
    doc: 'Further named Telnyx trunks (config file only): a list of { name, sipDomain, outboundProxy, sipTransport, sipUsername, sipPassword or sipPasswordEnv, translatedUriTemplate, directUriTemplate, techPrefix, numberFormat, maxCallsPerSecond, maxConcurrent }; routing rules pick one with trunk_out',
    // Checked key by key in trunks.ts, which names each entry's file key; this only keeps convict from guessing.
    format: (_val: unknown): void => undefined,
    default: [] as unknown[],
    // Entries may hold passwords: never printed or logged as they are (--check lists the trunks redacted).
    sensitive: true,
  },
} as const;
