import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { RulesError } from '../../src/routing/load.ts';
import { RoutingStore } from '../../src/routing/store.ts';

const DEBOUNCE_MS = 20;

function rulesYaml(...names: string[]): string {
  const rules = names.map((n) => `  - name: ${n}\n    match: { called: "+49" }\n    mode: bypass\n`).join('');
  return `rules:\n${rules || '  []\n'}default:\n  mode: bypass\n`;
}

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function setup(initial = rulesYaml('a')): {
  file: string;
  dir: string;
  store: RoutingStore;
  logs: Array<Record<string, unknown>>;
} {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-routing-store-'));
  cleanups.push(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'routing.yaml');
  fs.writeFileSync(file, initial);
  const logs: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const store = new RoutingStore(file, createLogger('info', sink), { debounceMs: DEBOUNCE_MS });
  cleanups.push(() => store.close());
  return { file, dir, store, logs };
}

const names = (store: RoutingStore): string[] => store.current().rules.map((r) => r.name);
const within = (ms = 5000) => ({ signal: AbortSignal.timeout(ms) });

describe('RoutingStore', () => {
  it('loads initially and throws RulesError on a bad file', () => {
    const { store, logs } = setup();
    expect(() => store.current()).toThrow(/before load/);
    expect(store.load().rules).toHaveLength(1);
    expect(names(store)).toEqual(['a']);
    expect(logs.find((l) => l.msg === 'routing rules loaded')).toMatchObject({ rules: 1 });

    const bad = setup('rules: []\n');
    expect(() => bad.store.load()).toThrow(RulesError);
  });

  it('reloads when the file is rewritten in place', async () => {
    const { file, store, logs } = setup();
    store.load();
    store.watch();
    const reloaded = once(store, 'reloaded', within());
    fs.writeFileSync(file, rulesYaml('a', 'b'));
    await reloaded;
    expect(names(store)).toEqual(['a', 'b']);
    expect(logs.find((l) => l.msg === 'routing rules reloaded')).toMatchObject({ rules: 2, file });
  });

  it('reloads when an editor replaces the file by rename', async () => {
    const { file, dir, store } = setup();
    store.load();
    store.watch();
    for (const next of [['x'], ['x', 'y', 'z']]) {
      const reloaded = once(store, 'reloaded', within());
      const tmp = path.join(dir, '.routing.yaml.swp');
      fs.writeFileSync(tmp, rulesYaml(...next));
      fs.renameSync(tmp, file);
      await reloaded;
      expect(names(store)).toEqual(next);
    }
  });

  it('keeps the old rules when the new file is bad, and recovers when it is fixed', async () => {
    const { file, store, logs } = setup();
    store.load();
    store.watch();
    const failed = once(store, 'reloadFailed', within());
    fs.writeFileSync(file, rulesYaml('a').replace('mode: bypass', 'mode: translate'));
    const [err] = await failed;
    expect(err).toBeInstanceOf(RulesError);
    expect(names(store)).toEqual(['a']);
    expect(store.reload()).toBe(false);
    expect(names(store)).toEqual(['a']);
    const logged = logs.find((l) => l.msg === 'routing rules reload failed; keeping the previous rules');
    expect(logged).toMatchObject({ level: 'error', keptRules: 1 });
    expect(JSON.stringify(logged)).toContain('line 4');

    const reloaded = once(store, 'reloaded', within());
    fs.writeFileSync(file, rulesYaml('fixed'));
    await reloaded;
    expect(names(store)).toEqual(['fixed']);
  });

  it('reload() returns false and keeps the rules when the file disappears', () => {
    const { file, store } = setup();
    store.load();
    fs.rmSync(file);
    expect(store.reload()).toBe(false);
    expect(names(store)).toEqual(['a']);
  });

  it('tryReload() returns the loader error, and loadedAt()/lastFailure() say which rules are in force since when', () => {
    const { file, store } = setup();
    expect(store.loadedAt()).toBeUndefined();
    store.load();
    const loadedAt = store.loadedAt();
    expect(loadedAt).toBeInstanceOf(Date);
    expect(store.lastFailure()).toBeUndefined();

    fs.writeFileSync(file, rulesYaml('a').replace('mode: bypass', 'mode: translate'));
    const refused = store.tryReload();
    expect(refused.ok).toBe(false);
    const error = refused.ok ? undefined : refused.error;
    expect(error).toBeInstanceOf(RulesError);
    expect((error as RulesError).line).toBe(4);
    expect(store.lastFailure()?.error).toBe(error);
    expect(store.loadedAt()).toBe(loadedAt);
    expect(names(store)).toEqual(['a']);

    fs.writeFileSync(file, rulesYaml('b', 'c'));
    const ok = store.tryReload();
    expect(ok.ok && ok.rules.rules.map((r) => r.name)).toEqual(['b', 'c']);
    expect(store.lastFailure()).toBeUndefined();
    expect(store.loadedAt()?.getTime()).toBeGreaterThanOrEqual(loadedAt?.getTime() ?? Infinity);
  });

  it('logs one warning per rule with file, rule and line, on load and on every reload', () => {
    const greeted = (n: string) =>
      `rules:\n  - name: ${n}\n    match: {}\n    mode: bypass\n    greeting: { text: hi, language: en }\ndefault:\n  mode: bypass\n`;
    const { file, store, logs } = setup(greeted('g'));
    store.load();
    const warnings = () => logs.filter((l) => l.msg === 'routing rules warning');
    expect(warnings()).toEqual([expect.objectContaining({ level: 'warn', file, rule: 'g', line: 5, key: 'greeting' })]);
    expect(String(warnings()[0]!.warning)).toMatch(/line 5, column 5: rules\[0\] \("g"\), key "greeting": greeting is/);
    fs.writeFileSync(file, greeted('h'));
    expect(store.reload()).toBe(true);
    expect(warnings().map((l) => l.rule)).toEqual(['g', 'h']);
    fs.writeFileSync(file, rulesYaml('quiet'));
    expect(store.reload()).toBe(true);
    expect(warnings()).toHaveLength(2);
  });

  it('installs no signal handler: SIGHUP belongs to the process (main.ts), which calls reload()', () => {
    const { store } = setup();
    const before = process.listenerCount('SIGHUP');
    store.load();
    store.watch();
    expect(process.listenerCount('SIGHUP')).toBe(before);
    store.close();
  });

  it('close() stops watching', async () => {
    const { file, store } = setup();
    store.load();
    store.watch();
    store.watch(); // idempotent
    store.close();

    let reloads = 0;
    store.on('reloaded', () => reloads++);
    fs.writeFileSync(file, rulesYaml('ignored'));
    // Give a (wrongly) surviving watcher many debounce periods to fire.
    await sleep(DEBOUNCE_MS * 15);
    expect(reloads).toBe(0);
    expect(names(store)).toEqual(['a']);
    // Explicit reload still works after close().
    expect(store.reload()).toBe(true);
    expect(names(store)).toEqual(['ignored']);
  });
});
