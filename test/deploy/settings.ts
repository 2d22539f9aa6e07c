/**
 * What the deploy examples are checked against: the daemon's own settings (env names and defaults from the config
 * schema) and the Dockerfile's DATA_DIR, read from the sources so the examples cannot drift from them unseen.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { schema } from '../../src/config/schema.ts';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export function readRepoFile(rel: string): string {
  return fs.readFileSync(path.join(ROOT, rel), 'utf8');
}

/** Every env name the daemon reads, with its default. */
export function envDefaults(): Map<string, unknown> {
  const out = new Map<string, unknown>();
  const walk = (node: object): void => {
    for (const v of Object.values(node)) {
      if (v && typeof v === 'object' && 'default' in v) {
        if ('env' in v && typeof v.env === 'string') out.set(v.env, v.default);
      } else if (v && typeof v === 'object') walk(v);
    }
  };
  walk(schema);
  return out;
}

export function envDefault(name: string): unknown {
  const defaults = envDefaults();
  if (!defaults.has(name)) throw new Error(`${name} is not a setting of the daemon`);
  return defaults.get(name);
}

/** The image's `ENV DATA_DIR=...`. */
export function dockerfileDataDir(): string {
  const m = /^ENV DATA_DIR=(\S+)$/m.exec(readRepoFile('Dockerfile'));
  if (!m?.[1]) throw new Error('Dockerfile sets no DATA_DIR');
  return m[1];
}

/** `KEY=value` lines of an env file (comments and blank lines skipped). */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m?.[1]) out.set(m[1], m[2] ?? '');
  }
  return out;
}
