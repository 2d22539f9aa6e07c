/**
 * Every problem of one configuration in one run. convict coerces env text and merges the file, but its messages name
 * neither the env var nor the file and show a coerced value ("NaN" for "abc"); so this walks the schema itself,
 * checks each setting with its format against the text the operator wrote, and checks the file for unknown keys.
 * convict's strict validation still runs afterwards as a backstop for anything this walk does not know.
 */
import fs from 'node:fs';
import convict from 'convict';
import YAML from 'yaml';
import { formatOf } from './formats.ts';
import { schema } from './schema.ts';

export interface Setting {
  /** Key in the config file, e.g. `sip.port`. */
  path: string;
  env?: string;
  doc: string;
  format: unknown;
  sensitive: boolean;
  default: unknown;
}

export type Source = 'default' | 'env' | 'file';

export interface SettingValue {
  setting: Setting;
  /** The merged value (defaults < file < env) as convict holds it. */
  value: unknown;
  source: Source;
  /** False when this setting has an error of its own (rules between settings then skip it). */
  valid: boolean;
}

export interface ValidatedConfig {
  /** convict's merged properties; only meaningful when `errors` is empty. */
  properties: unknown;
  values: SettingValue[];
  errors: string[];
}

type SchemaNode = Record<string, unknown>;

const isLeaf = (node: unknown): node is SchemaNode => typeof node === 'object' && node !== null && 'default' in node;
const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every setting of the schema, in schema order. */
export function settings(node: SchemaNode = schema as unknown as SchemaNode, prefix = ''): Setting[] {
  const out: Setting[] = [];
  for (const [key, child] of Object.entries(node)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (isLeaf(child)) {
      out.push({
        path,
        env: typeof child.env === 'string' ? child.env : undefined,
        doc: String(child.doc ?? ''),
        format: child.format,
        sensitive: child.sensitive === true,
        default: child.default,
      });
    } else if (isMapping(child)) out.push(...settings(child, path));
  }
  return out;
}

/** `SIP_PORT (sip.port)`: the two names an operator may have used. */
export function settingName(s: Setting): string {
  return s.env ? `${s.env} (${s.path})` : s.path;
}

export function validateConfig(env: NodeJS.ProcessEnv, file: string | undefined): ValidatedConfig {
  const errors: string[] = [];
  const conf = convict(schema as unknown as convict.Schema<unknown>, { env, args: [] });
  const fileValues = file ? readConfigFile(file, errors) : undefined;
  if (file && fileValues) {
    errors.push(...unknownKeys(fileValues, schema as unknown as SchemaNode, '', file));
    try {
      conf.load(withoutBadSections(fileValues, schema as unknown as SchemaNode));
    } catch (err) {
      errors.push(`config file ${file}: ${(err as Error).message}`);
    }
  }
  const values: SettingValue[] = [];
  for (const setting of settings()) {
    const source: Source =
      setting.env && env[setting.env] !== undefined
        ? 'env'
        : fileValues && has(fileValues, setting.path)
          ? 'file'
          : 'default';
    const written = source === 'env' ? env[setting.env ?? ''] : fileAt(fileValues, setting.path);
    const checked = checkSetting(conf, setting, source, written, source === 'file' ? ` in ${file}` : '');
    values.push({ setting, value: checked.value, source, valid: !checked.error });
    if (checked.error) errors.push(checked.error);
  }
  errors.push(...crossChecks(values));
  if (errors.length === 0) {
    try {
      conf.validate({ allowed: 'strict' });
    } catch (err) {
      const where = file ? ` (env, and file ${file})` : '';
      errors.push(...(err as Error).message.split('\n').map((line) => `${line}${where}`));
    }
  }
  return { properties: conf.getProperties(), values, errors };
}

function checkSetting(
  conf: convict.Config<unknown>,
  setting: Setting,
  source: Source,
  written: unknown,
  where: string,
): { value: unknown; error?: string } {
  const format = formatOf(setting.format);
  let value: unknown;
  try {
    value = conf.get(setting.path as never);
  } catch {
    value = undefined; // a file replaced a whole section with a scalar: reported by unknownKeys
  }
  // The operator's own text, read strictly: convict's coercion of env text may be lax for some formats.
  if (source === 'env' && format?.coerce) value = format.coerce(String(written));
  if (!format || value === undefined) return { value };
  try {
    format.validate(value);
    return { value };
  } catch (err) {
    const shown = setting.sensitive ? 'is set (a secret: value not shown)' : `= ${JSON.stringify(written)}`;
    return { value, error: `${settingName(setting)} ${shown}${where}: ${(err as Error).message}` };
  }
}

function readConfigFile(file: string, errors: string[]): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    errors.push(`config file ${file} (GATEWAY_CONFIG): cannot read it: ${(err as Error).message}`);
    return undefined;
  }
  let parsed: unknown;
  try {
    parsed = /\.ya?ml$/i.test(file) ? YAML.parse(text) : JSON.parse(text);
  } catch (err) {
    const kind = /\.ya?ml$/i.test(file) ? 'YAML' : 'JSON';
    errors.push(`config file ${file} (GATEWAY_CONFIG): not valid ${kind}: ${(err as Error).message.split('\n')[0]}`);
    return undefined;
  }
  if (parsed === null || parsed === undefined) return {}; // an empty file sets nothing
  if (!isMapping(parsed)) {
    errors.push(`config file ${file} (GATEWAY_CONFIG): must be a mapping of settings, e.g. "sip: { port: 5060 }"`);
    return undefined;
  }
  return parsed;
}

function unknownKeys(values: Record<string, unknown>, node: SchemaNode, prefix: string, file: string): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(values)) {
    const path = prefix ? `${prefix}.${key}` : key;
    const child = Object.hasOwn(node, key) ? node[key] : undefined;
    if (child === undefined) {
      const hint = closest(key, Object.keys(node));
      out.push(
        `config file ${file}: unknown key ${path}${hint ? ` (did you mean ${prefix ? `${prefix}.` : ''}${hint}?)` : ''}`,
      );
    } else if (!isLeaf(child) && isMapping(child)) {
      if (isMapping(value)) out.push(...unknownKeys(value, child, path, file));
      else out.push(`config file ${file}: ${path} must be a mapping of settings (${Object.keys(child).join(', ')})`);
    }
  }
  return out;
}

/** The file without sections replaced by a scalar (reported above): convict would fail merging env into them. */
function withoutBadSections(values: Record<string, unknown>, node: SchemaNode): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    const child = Object.hasOwn(node, key) ? node[key] : undefined;
    if (child === undefined || isLeaf(child) || !isMapping(child)) out[key] = value;
    else if (isMapping(value)) out[key] = withoutBadSections(value, child);
  }
  return out;
}

/** The known key a typo most likely meant, if any: one edit away for short keys, two for longer ones. */
function closest(key: string, known: string[]): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const name of known) {
    const d = distance(key.toLowerCase(), name.toLowerCase());
    if (d <= (key.length <= 4 ? 1 : 2) && (!best || d < best.d)) best = { name, d };
  }
  return best?.name;
}

/** Edit distance counting a swap of two neighbours as one edit ("prot" is one edit from "port"). */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 0; j <= b.length; j++) (d[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = d[i] as number[];
    const up = d[i - 1] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((up[j] as number) + 1, (row[j - 1] as number) + 1, (up[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

function has(values: Record<string, unknown>, path: string): boolean {
  return fileAt(values, path) !== undefined;
}

function fileAt(values: Record<string, unknown> | undefined, path: string): unknown {
  let node: unknown = values;
  for (const key of path.split('.')) {
    if (!isMapping(node) || !Object.hasOwn(node, key)) return undefined;
    node = node[key];
  }
  return node;
}

/** Rules between settings. A setting with an error of its own reads as unset here, so it is not blamed twice. */
function crossChecks(values: SettingValue[]): string[] {
  const byPath = new Map(values.map((v) => [v.setting.path, v]));
  const known = (path: string): boolean => byPath.get(path)?.valid === true;
  const get = (path: string): unknown => (known(path) ? byPath.get(path)?.value : undefined);
  const name = (path: string): string => {
    const v = byPath.get(path);
    return v ? settingName(v.setting) : path;
  };
  const out: string[] = [];
  if (get('telnyx.sipUsername') && known('telnyx.sipPassword') && !get('telnyx.sipPassword'))
    out.push(`${name('telnyx.sipPassword')} is required when ${name('telnyx.sipUsername')} is set`);
  const transports = get('sip.transports');
  if (Array.isArray(transports) && transports.includes('tls')) {
    const missing = ['sip.tlsCertFile', 'sip.tlsKeyFile'].filter((p) => known(p) && !get(p)).map(name);
    if (missing.length > 0)
      out.push(
        `${missing.join(' and ')} ${missing.length > 1 ? 'are' : 'is'} required when ${name('sip.transports')} lists tls`,
      );
  }
  const lease = get('registry.leaseIntervalSec');
  const deadAfter = get('registry.instanceDeadAfterSec');
  if (typeof lease === 'number' && typeof deadAfter === 'number' && deadAfter < 2 * lease)
    out.push(
      `${name('registry.instanceDeadAfterSec')} must be at least twice ${name('registry.leaseIntervalSec')}: a live instance would be taken for dead between two renewals`,
    );
  if (!known('kallglot.apiUrl') || !known('kallglot.sandbox') || !known('nodeEnv')) return out;
  const apiUrl = get('kallglot.apiUrl');
  if (apiUrl && !get('kallglot.apiKey'))
    out.push(`${name('kallglot.apiKey')} is required when ${name('kallglot.apiUrl')} is set`);
  const sandbox = get('kallglot.sandbox') === true;
  if (sandbox && apiUrl) {
    out.push(
      `${name('kallglot.sandbox')} is true and ${name('kallglot.apiUrl')} is set: choose one (unset KALLGLOT_API_URL to use the local sandbox, or KALLGLOT_SANDBOX=false to use your Kallglot account)`,
    );
  }
  const production = get('nodeEnv') === 'production';
  const sandboxRefused = byPath.get('kallglot.sandbox')?.source !== 'default' && !sandbox;
  if (!apiUrl && !sandbox && production) {
    out.push(
      'NODE_ENV=production and no Kallglot account: set KALLGLOT_API_URL and KALLGLOT_API_KEY, or set KALLGLOT_SANDBOX=true to run the local sandbox (no real translation) on purpose',
    );
  } else if (!apiUrl && sandboxRefused) {
    out.push(
      `${name('kallglot.sandbox')} is false and ${name('kallglot.apiUrl')} is empty: set KALLGLOT_API_URL and KALLGLOT_API_KEY, or drop KALLGLOT_SANDBOX=false to use the local sandbox`,
    );
  }
  return out;
}
