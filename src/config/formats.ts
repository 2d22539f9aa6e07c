/**
 * The value formats of the configuration schema, registered with convict under names the schema refers to. Each
 * format is a pair: `coerce` turns env text into a value and never throws (text it cannot read is passed on
 * unchanged), `validate` throws an Error whose message says why the value is wrong. Collecting every error of a run
 * (load.ts) relies on that split: a throwing coerce would stop convict at the first bad env var.
 */
import net from 'node:net';
import convict from 'convict';
import { publicAddressProblem } from './public-address.ts';

export interface ValueFormat {
  validate(value: unknown): void;
  coerce?(text: string): unknown;
}

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

/** Only these words: convict's own Boolean coercion reads every text but "false" as true ("no", "0", "off"...). */
const boolean: ValueFormat = {
  coerce: (text) => {
    const word = text.trim().toLowerCase();
    if (TRUE_WORDS.has(word)) return true;
    if (FALSE_WORDS.has(word)) return false;
    return text;
  },
  validate: (val) => {
    if (typeof val !== 'boolean') throw new Error('must be true or false (also accepted: 1/0, yes/no, on/off)');
  },
};

/** Whole numbers only: parseInt (convict's coercion) would read "5060abc" as 5060 and "abc" as NaN. */
function wholeNumber(text: string): unknown {
  return /^\s*\d+\s*$/.test(text) ? Number(text) : text;
}

const port: ValueFormat = {
  coerce: wholeNumber,
  validate: (val) => {
    if (!Number.isInteger(val) || (val as number) < 0 || (val as number) > 65535)
      throw new Error('must be a port number, a whole number from 0 to 65535');
  },
};

const nat: ValueFormat = {
  coerce: wholeNumber,
  validate: (val) => {
    if (!Number.isInteger(val) || (val as number) < 0) throw new Error('must be a whole number, 0 or more');
  },
};

/** For timeouts and sizes where 0 would not mean "no limit" but "fail every time". */
const positive: ValueFormat = {
  coerce: wholeNumber,
  validate: (val) => {
    if (!Number.isInteger(val) || (val as number) < 1) throw new Error('must be a whole number, 1 or more');
  },
};

const listCoerce = (text: string): string[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

const TRANSPORTS = ['udp', 'tcp', 'tls'];

const transportList: ValueFormat = {
  coerce: listCoerce,
  validate: (val) => {
    if (!Array.isArray(val)) throw new Error('must be a list of transports (udp, tcp, tls)');
    if (val.length === 0) throw new Error('at least one transport is required (udp, tcp, tls)');
    for (const t of val)
      if (!TRANSPORTS.includes(t)) throw new Error(`unknown transport "${String(t)}" (udp, tcp, tls)`);
  },
};

const cidrList: ValueFormat = {
  coerce: listCoerce,
  validate: (val) => {
    if (!Array.isArray(val)) throw new Error('must be a list of IP addresses or CIDRs');
    for (const raw of val) {
      const entry = String(raw).trim();
      const [ip, bits] = entry.split('/');
      const family = net.isIP(ip ?? '');
      const max = family === 6 ? 128 : 32;
      if (!family || (bits !== undefined && !(/^\d+$/.test(bits) && Number(bits) <= max)))
        throw new Error(`"${entry}" is not an IP address or CIDR`);
    }
  },
};

/** Host names (a leading dot or none: the name and its subdomains) and IP addresses, comma separated. */
const hostList: ValueFormat = {
  coerce: listCoerce,
  validate: (val) => {
    if (!Array.isArray(val)) throw new Error('must be a list of host names or IP addresses');
    for (const raw of val) {
      const entry = String(raw).trim().replace(/^\./, '');
      if (
        !net.isIP(entry.replace(/^\[|\]$/g, '')) &&
        !/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(entry)
      )
        throw new Error(`"${String(raw)}" is not a host name or IP address`);
    }
  },
};

const credentialList: ValueFormat = {
  coerce: listCoerce,
  validate: (val) => {
    if (!Array.isArray(val)) throw new Error('must be a list of user:password entries');
    for (const e of val) if (!/^[^:]+:.+$/.test(String(e))) throw new Error('entries must be user:password');
  },
};

const ipAddress: ValueFormat = {
  validate: (val) => {
    if (typeof val !== 'string' || !net.isIP(val)) throw new Error('must be an IP address such as 0.0.0.0 or ::');
  },
};

const hostPort: ValueFormat = {
  validate: (val) => {
    if (val === '') return;
    // A bare IPv6 address would be ambiguous (is its last group the port?), so IPv6 goes in brackets.
    if (typeof val === 'string' && net.isIPv6(val))
      throw new Error(`IPv6 addresses go in brackets: [${val}] or [${val}]:5060`);
    const v6 = typeof val === 'string' ? /^\[([^\]]*)\]/.exec(val)?.[1] : undefined;
    if (
      typeof val !== 'string' ||
      !/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/.test(val) ||
      (v6 !== undefined && !net.isIPv6(v6))
    )
      throw new Error('must be host or host:port, e.g. 192.0.2.10:5060 or [2001:db8::10]:5060');
    const p = /:(\d{1,5})$/.exec(val);
    if (p && Number(p[1]) > 65535) throw new Error('port out of range (0-65535)');
  },
};

/** What Resolver.setServers takes: `ip`, `ip:port`, `[v6]` or `[v6]:port`; no host names (they would need DNS). */
const dnsServerList: ValueFormat = {
  coerce: listCoerce,
  validate: (val) => {
    if (!Array.isArray(val)) throw new Error('must be a list of DNS server addresses (ip or ip:port)');
    for (const raw of val) {
      const entry = String(raw).trim();
      if (net.isIPv6(entry)) continue;
      const m = /^\[([^\]]+)\](?::(\d{1,5}))?$/.exec(entry) ?? /^([^:[\]]+)(?::(\d{1,5}))?$/.exec(entry);
      const ip = m?.[1] ?? entry;
      if (!m || !net.isIP(ip) || (m[2] !== undefined && Number(m[2]) > 65535))
        throw new Error(`"${entry}" is not ip or ip:port (IPv6 in brackets: [2001:db8::53]:53)`);
    }
  },
};

const publicAddress: ValueFormat = {
  validate: (val) => {
    const problem = publicAddressProblem(val);
    if (problem) throw new Error(problem);
  },
};

const sipUriTemplate: ValueFormat = {
  validate: (val) => {
    if (typeof val !== 'string' || !/^sips?:/.test(val)) throw new Error('must be a sip: or sips: URI template');
  },
};

/** A sip:/sips: URI template, or empty for "not set" (a feature it configures is then off). */
const optionalSipUriTemplate: ValueFormat = {
  validate: (val) => {
    if (val === '') return;
    sipUriTemplate.validate(val);
  },
};

/** Why `val` is not an absolute http(s) base URL, or undefined when it is one. Empty means "not set". */
export function httpUrlProblem(val: unknown): string | undefined {
  if (val === '') return undefined;
  if (typeof val !== 'string') return 'must be text';
  if (/\s/.test(val)) return 'contains white space';
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(val)?.[1];
  if (!scheme || !val.includes('//')) return 'no scheme given';
  if (scheme !== 'http' && scheme !== 'https') return `scheme "${scheme}:" is not http or https`;
  let url: URL;
  try {
    url = new URL(val);
  } catch {
    return 'not a valid URL';
  }
  if (!url.hostname) return 'no host given';
  if (url.username || url.password) return 'must not contain credentials (use the API key setting)';
  if (url.search || url.hash || /[?#]/.test(val)) return 'must not have a query (?) or fragment (#)';
  return undefined;
}

/** Empty (SQLite) or a PostgreSQL URL; the message never repeats the value, which may carry a password. */
const registryUrl: ValueFormat = {
  validate: (val) => {
    if (val === '') return;
    let url: URL | undefined;
    try {
      url = new URL(String(val));
    } catch {
      url = undefined;
    }
    if (!url || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || !url.hostname)
      throw new Error('must be empty (SQLite) or a PostgreSQL URL such as postgres://user:password@host:5432/kallglot');
  },
};

function httpUrl(example: string): ValueFormat {
  return {
    validate: (val) => {
      const problem = httpUrlProblem(val);
      if (problem) throw new Error(`must be an absolute http(s) URL such as ${example} (${problem})`);
    },
  };
}

/**
 * Every named format. `port` and `nat` replace convict's built-ins of the same name, so every setting declared with
 * them, now or later, reads env text strictly.
 */
export const FORMATS: Readonly<Record<string, ValueFormat>> = {
  boolean,
  port,
  nat,
  positive,
  'transport-list': transportList,
  'cidr-list': cidrList,
  'host-list': hostList,
  'credential-list': credentialList,
  'ip-address': ipAddress,
  'host-port': hostPort,
  'dns-server-list': dnsServerList,
  'optional-sip-uri-template': optionalSipUriTemplate,
  'public-address': publicAddress,
  'sip-uri-template': sipUriTemplate,
  'kallglot-url': httpUrl('https://api.kallglot.com/v1'),
  'public-url': httpUrl('https://gw.example.com'),
  'telnyx-url': httpUrl('https://api.telnyx.com/v2'),
  'registry-url': registryUrl,
};

for (const [name, f] of Object.entries(FORMATS)) {
  convict.addFormat({ name, validate: f.validate, ...(f.coerce ? { coerce: f.coerce } : {}) });
}

/** The checker of a schema leaf's `format` (a name, an enum list, a constructor or a function). */
export function formatOf(format: unknown): ValueFormat | undefined {
  if (typeof format === 'string') return FORMATS[format];
  if (format === Boolean) return boolean;
  if (format === String) return { validate: (v) => void (typeof v !== 'string' && fail('must be text')) };
  if (format === Number) return { validate: (v) => void (!Number.isFinite(v) && fail('must be a number')) };
  if (Array.isArray(format)) {
    const options = format as unknown[];
    return {
      // Exact text only: convict reads "503abc" as 503 for a numeric choice.
      coerce: (text) => options.find((o) => String(o) === text.trim()) ?? text,
      validate: (v) => {
        if (!options.includes(v)) fail(`must be one of ${options.join(', ')}`);
      },
    };
  }
  if (typeof format === 'function') return { validate: format as (v: unknown) => void };
  return undefined;
}

function fail(reason: string): never {
  throw new Error(reason);
}
