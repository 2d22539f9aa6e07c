/**
 * Telnyx trunks: the connections the gateway sends INVITEs on. The top-level TELNYX_* settings form the trunk named
 * `default`; a config file may list more under `telnyx.trunks`, and routing rules pick one with `trunk_out: NAME`.
 * Each trunk has its own domain, transport, proxy, credentials, URI templates, number format, tech prefix and
 * limits. A named trunk inherits nothing from `default`: it is another Telnyx connection, and borrowing its
 * credentials or proxy by accident would send calls (and bills) to the wrong one. Keys it leaves out take the
 * built-in defaults.
 *
 * A password may be named by env var (`sipPasswordEnv`) so secrets stay out of files; it is read here, as every
 * other setting from the environment is read in config/. Every problem names the file key
 * (`telnyx.trunks[1].sipDomain`) and never shows a secret.
 */
import { FORMATS } from './formats.ts';
import { schema } from './schema.ts';
import { countryCodeProblem, dialPrefixProblem, techPrefixProblem } from './trunk-schema.ts';

export type TrunkTransport = (typeof schema.telnyx.sipTransport.format)[number];

/** How a trunk turns the numbers it sends into E.164: national (0…) and international (00…) prefixes become +. */
export interface NumberFormat {
  countryCode: string;
  nationalPrefix: string;
  internationalPrefix: string;
}

export interface TelnyxTrunk {
  name: string;
  sipDomain: string;
  /** host:port to send this trunk's INVITEs to instead of resolving its domain; empty: resolve. */
  outboundProxy: string;
  sipTransport: TrunkTransport;
  /** Credential connection (digest); empty: an IP connection. */
  sipUsername: string;
  sipPassword: string;
  /** The env var the password was read from (named in the file), for --check; absent when inline or unset. */
  sipPasswordEnv?: string;
  translatedUriTemplate: string;
  directUriTemplate: string;
  /** Put in front of the Request-URI user part of every INVITE on this trunk; empty: none. */
  techPrefix: string;
  /** Absent: numbers go as the PBX sent them. */
  numberFormat?: NumberFormat;
  /** INVITEs per second on this trunk, fallback INVITEs included (0: no limit). */
  maxCallsPerSecond: number;
  /** Calls at once on this trunk (0: no limit). */
  maxConcurrent: number;
}

export const DEFAULT_TRUNK_NAME = 'default';

/** Placeholders each URI template may use (calls/policy.ts fills them). */
const PLACEHOLDERS = {
  translatedUriTemplate: ['session_id', 'domain', 'called', 'calling'],
  directUriTemplate: ['called', 'calling', 'domain'],
} as const;

const KEYS = [
  'name',
  'sipDomain',
  'outboundProxy',
  'sipTransport',
  'sipUsername',
  'sipPassword',
  'sipPasswordEnv',
  'translatedUriTemplate',
  'directUriTemplate',
  'techPrefix',
  'numberFormat',
  'maxCallsPerSecond',
  'maxConcurrent',
] as const;
const NUMBER_FORMAT_KEYS = ['countryCode', 'nationalPrefix', 'internationalPrefix'] as const;

/** The parts of the `telnyx` config section the `default` trunk is made of. */
export interface TopLevelTelnyx {
  sipDomain: string;
  outboundProxy: string;
  sipTransport: TrunkTransport;
  sipUsername: string;
  sipPassword: string;
  translatedUriTemplate: string;
  directUriTemplate: string;
  techPrefix: string;
  numberFormat: NumberFormat;
  maxCallsPerSecond: number;
  maxConcurrent: number;
}

/** The trunk the top-level TELNYX_* settings form. */
export function defaultTrunk(t: TopLevelTelnyx): TelnyxTrunk {
  return {
    name: DEFAULT_TRUNK_NAME,
    sipDomain: t.sipDomain,
    outboundProxy: t.outboundProxy,
    sipTransport: t.sipTransport,
    sipUsername: t.sipUsername,
    sipPassword: t.sipPassword,
    translatedUriTemplate: t.translatedUriTemplate,
    directUriTemplate: t.directUriTemplate,
    techPrefix: t.techPrefix,
    // String(): a file may give the country code as a YAML number (49).
    ...(t.numberFormat.countryCode && {
      numberFormat: { ...t.numberFormat, countryCode: String(t.numberFormat.countryCode) },
    }),
    maxCallsPerSecond: t.maxCallsPerSecond,
    maxConcurrent: t.maxConcurrent,
  };
}

/** Every trunk of a config, `default` first. */
export function allTrunks(telnyx: TopLevelTelnyx & { trunks: readonly TelnyxTrunk[] }): TelnyxTrunk[] {
  return [defaultTrunk(telnyx), ...telnyx.trunks];
}

/** A copy safe to print or log: the password only as "set" or "unset". */
export function redactedTrunk(t: TelnyxTrunk): TelnyxTrunk {
  return { ...t, sipPassword: t.sipPassword ? 'set' : 'unset' };
}

type Mapping = Record<string, unknown>;
const isMapping = (v: unknown): v is Mapping => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Where problems are reported: the config file, and the env for `sipPasswordEnv`. */
interface ReadContext {
  env: NodeJS.ProcessEnv;
  where: string;
  errors: string[];
}

/**
 * The named trunks of `telnyx.trunks` as the file wrote them (`raw`: the parsed list, undefined when absent), each
 * checked; `errors` lists every problem. `file` is only used in messages.
 */
export function parseTrunks(
  raw: unknown,
  env: NodeJS.ProcessEnv,
  file: string | undefined,
): { trunks: TelnyxTrunk[]; errors: string[] } {
  const ctx: ReadContext = { env, where: file ? ` in ${file}` : '', errors: [] };
  if (raw === undefined || raw === null) return { trunks: [], errors: [] };
  if (!Array.isArray(raw)) {
    ctx.errors.push(`telnyx.trunks${ctx.where}: must be a list of trunks, e.g. "trunks: [{ name: eu, ... }]"`);
    return { trunks: [], errors: ctx.errors };
  }
  const trunks: TelnyxTrunk[] = [];
  const firstByName = new Map<string, number>([[DEFAULT_TRUNK_NAME, -1]]);
  for (const [index, entry] of raw.entries()) {
    const trunk = parseTrunk(entry, `telnyx.trunks[${index}]`, ctx);
    if (!trunk) continue;
    trunks.push(trunk);
    if (!trunk.name) continue; // its name is wrong, already said
    const first = firstByName.get(trunk.name);
    if (first === -1)
      ctx.errors.push(
        `telnyx.trunks[${index}].name = "${trunk.name}"${ctx.where}: "default" is the trunk of the top-level TELNYX_* settings; choose another name`,
      );
    else if (first !== undefined)
      ctx.errors.push(
        `telnyx.trunks[${index}].name = "${trunk.name}"${ctx.where}: already used by telnyx.trunks[${first}]`,
      );
    else firstByName.set(trunk.name, index);
  }
  return { trunks, errors: ctx.errors };
}

function parseTrunk(entry: unknown, key: string, ctx: ReadContext): TelnyxTrunk | undefined {
  if (!isMapping(entry)) {
    ctx.errors.push(`${key}${ctx.where}: must be a mapping (name, sipDomain, ...)`);
    return undefined;
  }
  for (const k of Object.keys(entry))
    if (!(KEYS as readonly string[]).includes(k))
      ctx.errors.push(`${key}.${k}${ctx.where}: unknown key (known: ${KEYS.join(', ')})`);
  const name = entry.name;
  if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(name)) {
    ctx.errors.push(
      `${key}.name${name === undefined ? '' : ` = ${JSON.stringify(name)}`}${ctx.where}: ` +
        'required: letters, digits, "_", "." or "-", starting with a letter or digit (at most 63)',
    );
  }
  const get = reader(entry, key, ctx);
  const pw = password(entry, key, ctx);
  const trunk: TelnyxTrunk = {
    name: typeof name === 'string' ? name : '',
    sipDomain: get('sipDomain', hostProblem),
    outboundProxy: get('outboundProxy', formatProblem('host-port')),
    sipTransport: get('sipTransport', transportProblem),
    sipUsername: get('sipUsername', textProblem),
    sipPassword: pw ?? '',
    translatedUriTemplate: get('translatedUriTemplate', templateProblem('translatedUriTemplate')),
    directUriTemplate: get('directUriTemplate', templateProblem('directUriTemplate')),
    techPrefix: get('techPrefix', techPrefixProblem),
    maxCallsPerSecond: get('maxCallsPerSecond', formatProblem('nat')),
    maxConcurrent: get('maxConcurrent', formatProblem('nat')),
  };
  if (typeof entry.sipPasswordEnv === 'string') trunk.sipPasswordEnv = entry.sipPasswordEnv;
  const numberFormat = parseNumberFormat(entry.numberFormat, `${key}.numberFormat`, ctx);
  if (numberFormat) trunk.numberFormat = numberFormat;
  if (trunk.sipUsername && pw === '')
    ctx.errors.push(`${key}.sipPassword (or sipPasswordEnv)${ctx.where}: required when ${key}.sipUsername is set`);
  return trunk;
}

type Problem = (val: unknown) => string | undefined;

type ReadKey =
  | 'sipDomain'
  | 'outboundProxy'
  | 'sipTransport'
  | 'sipUsername'
  | 'translatedUriTemplate'
  | 'directUriTemplate'
  | 'techPrefix'
  | 'maxCallsPerSecond'
  | 'maxConcurrent';

/** Reads one key of a trunk: the file's value when given and valid, else the built-in default (and an error). */
function reader(entry: Mapping, key: string, ctx: ReadContext) {
  return <K extends ReadKey>(k: K, problem: Problem): Pick<TelnyxTrunk, ReadKey>[K] => {
    const value = entry[k];
    if (value === undefined) return DEFAULTS[k];
    const p = problem(value);
    if (!p) return value as Pick<TelnyxTrunk, ReadKey>[K]; // `problem` checked it is one
    ctx.errors.push(`${key}.${k} = ${JSON.stringify(value)}${ctx.where}: ${p}`);
    return DEFAULTS[k];
  };
}

/** The built-in defaults of a named trunk's keys: the schema's, so both kinds of trunk start alike. */
const DEFAULTS: Pick<TelnyxTrunk, ReadKey> = {
  sipDomain: schema.telnyx.sipDomain.default,
  outboundProxy: schema.telnyx.outboundProxy.default,
  sipTransport: schema.telnyx.sipTransport.default,
  sipUsername: '',
  translatedUriTemplate: schema.telnyx.translatedUriTemplate.default,
  directUriTemplate: schema.telnyx.directUriTemplate.default,
  techPrefix: '',
  maxCallsPerSecond: schema.telnyx.maxCallsPerSecond.default,
  maxConcurrent: schema.telnyx.maxConcurrent.default,
};

/**
 * The password: inline (`sipPassword`) or read from the env var `sipPasswordEnv` names; '' when there is none,
 * undefined when what was given is wrong (already reported). Never shown in a message.
 */
function password(entry: Mapping, key: string, ctx: ReadContext): string | undefined {
  const inline = entry.sipPassword;
  const envName = entry.sipPasswordEnv;
  if (inline !== undefined && envName !== undefined) {
    ctx.errors.push(`${key}.sipPassword and ${key}.sipPasswordEnv${ctx.where}: give one of them, not both`);
    return undefined;
  }
  if (inline !== undefined) {
    if (typeof inline === 'string') return inline;
    ctx.errors.push(`${key}.sipPassword is set (a secret: value not shown)${ctx.where}: must be text`);
    return undefined;
  }
  if (envName === undefined) return '';
  if (typeof envName !== 'string' || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(envName)) {
    ctx.errors.push(`${key}.sipPasswordEnv = ${JSON.stringify(envName)}${ctx.where}: must be an env var name`);
    return undefined;
  }
  const value = ctx.env[envName];
  if (!value) {
    ctx.errors.push(`${key}.sipPasswordEnv = "${envName}"${ctx.where}: the env var ${envName} is not set or empty`);
    return undefined;
  }
  return value;
}

function parseNumberFormat(raw: unknown, key: string, ctx: ReadContext): NumberFormat | undefined {
  if (raw === undefined) return undefined;
  if (!isMapping(raw)) {
    ctx.errors.push(`${key}${ctx.where}: must be a mapping { countryCode, nationalPrefix, internationalPrefix }`);
    return undefined;
  }
  for (const k of Object.keys(raw))
    if (!(NUMBER_FORMAT_KEYS as readonly string[]).includes(k))
      ctx.errors.push(`${key}.${k}${ctx.where}: unknown key (known: ${NUMBER_FORMAT_KEYS.join(', ')})`);
  const code = raw.countryCode;
  const field = (k: (typeof NUMBER_FORMAT_KEYS)[number], problem: Problem, fallback: string): string => {
    const v = raw[k];
    if (v === undefined) return fallback;
    const p = problem(v);
    if (!p) return String(v); // a country code may be a YAML number (49); the prefixes were refused as numbers
    ctx.errors.push(`${key}.${k} = ${JSON.stringify(raw[k])}${ctx.where}: ${p}`);
    return fallback;
  };
  const countryCode = field('countryCode', countryCodeProblem, '');
  if (!countryCode && code === undefined)
    ctx.errors.push(`${key}.countryCode${ctx.where}: required in a numberFormat (e.g. 49)`);
  return {
    countryCode,
    nationalPrefix: field('nationalPrefix', dialPrefixProblem, '0'),
    internationalPrefix: field('internationalPrefix', dialPrefixProblem, '00'),
  };
}

function formatProblem(name: string): Problem {
  return (val) => {
    try {
      FORMATS[name]?.validate(val);
      return undefined;
    } catch (err) {
      return (err as Error).message;
    }
  };
}

const textProblem: Problem = (val) => (typeof val === 'string' ? undefined : 'must be text');

const hostProblem: Problem = (val) =>
  typeof val === 'string' && val !== '' ? formatProblem('host-list')([val]) : 'must be a host name or IP address';

const transportProblem: Problem = (val) => {
  const options: readonly unknown[] = schema.telnyx.sipTransport.format;
  return options.includes(val) ? undefined : `must be one of ${options.join(', ')}`;
};

function templateProblem(which: keyof typeof PLACEHOLDERS): Problem {
  return (val) => {
    const p = formatProblem('sip-uri-template')(val);
    if (p) return p;
    const allowed: readonly string[] = PLACEHOLDERS[which];
    const unknown = [...String(val).matchAll(/\{(\w+)\}/g)].map((m) => m[1]).find((n) => !allowed.includes(n ?? ''));
    return unknown ? `unknown placeholder {${unknown}} (use ${allowed.map((n) => `{${n}}`).join(', ')})` : undefined;
  };
}
