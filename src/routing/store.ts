/**
 * Holds the live RuleSet and replaces it atomically on reload. A bad edit must never take routing down: reload
 * errors are logged and the previous rules stay in force.
 *
 * Watching: fs.watch on the file's *directory*, not the file, because editors (vim, sed -i, atomic writers) and
 * Kubernetes ConfigMaps replace the file by rename/symlink swap, which orphans a watch on the old inode. Events are
 * debounced, and the file is reloaded only when its bytes differ from the last ones tried, so noise from other
 * files in the directory costs one small read. An explicit reload() (SIGHUP, the admin API) always reloads.
 */
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logger.ts';
import { parseRules, readRulesFile } from './load.ts';
import type { RuleSet } from './types.ts';

export interface RoutingStoreOptions {
  /** Quiet period after the last file event before reloading; editors emit bursts of events per save. */
  debounceMs?: number;
  /** The gateway config's Telnyx trunk names: a file whose `trunk_out` names another is refused, on load and reload. */
  telnyxTrunks?: readonly string[];
}

/** What an explicit reload did: the new rules, or why the file was refused (the previous rules stay). */
export type ReloadOutcome = { ok: true; rules: RuleSet } | { ok: false; error: Error };

export interface RoutingStoreEvents {
  reloaded: [rules: RuleSet];
  reloadFailed: [error: Error];
}

export class RoutingStore extends EventEmitter<RoutingStoreEvents> {
  readonly path: string;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  readonly #telnyxTrunks: readonly string[] | undefined;
  #rules: RuleSet | undefined;
  #loadedAt: Date | undefined;
  /** The last refused reload, until a good one: a watcher reload fails silently otherwise (logs aside). */
  #lastFailure: { at: Date; error: Error } | undefined;
  /** Text of the last load attempt (good or bad), to skip reloads for directory events that did not change it. */
  #lastText: string | undefined;
  #watcher: fs.FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;

  constructor(file: string, logger: Logger, opts: RoutingStoreOptions = {}) {
    super();
    this.path = file;
    this.#logger = logger;
    this.#debounceMs = opts.debounceMs ?? 150;
    this.#telnyxTrunks = opts.telnyxTrunks;
  }

  /** Initial load; throws RulesError so start-up fails loudly on a bad file. */
  load(): RuleSet {
    const text = readRulesFile(this.path);
    const rules = parseRules(text, this.path, { telnyxTrunks: this.#telnyxTrunks });
    this.#lastText = text;
    this.#rules = rules;
    this.#loadedAt = new Date();
    this.#logger.info(
      { file: this.path, rules: rules.rules.length, defaultMode: rules.default.mode },
      'routing rules loaded',
    );
    this.#warn(rules);
    return rules;
  }

  current(): RuleSet {
    if (!this.#rules) throw new Error('RoutingStore.current() called before load()');
    return this.#rules;
  }

  /** When the rules in force were loaded; undefined before load(). */
  loadedAt(): Date | undefined {
    return this.#loadedAt;
  }

  lastFailure(): { at: Date; error: Error } | undefined {
    return this.#lastFailure;
  }

  /** Re-read the file. On error: log, keep the previous rules, return false. */
  reload(): boolean {
    return this.tryReload().ok;
  }

  /** reload() that also says why a file was refused (the admin API shows the loader's error). */
  tryReload(): ReloadOutcome {
    let text: string;
    try {
      text = readRulesFile(this.path);
    } catch (err) {
      return this.#failed(err as Error);
    }
    return this.#apply(text);
  }

  /**
   * Reload on changes to the file until close(). Idempotent. (SIGHUP is the process's business: main.ts owns the
   * signals and calls reload().)
   */
  watch(): void {
    if (this.#watcher) return;
    const dir = path.dirname(path.resolve(this.path));
    // Not persistent: watching rules must not keep an otherwise finished process alive.
    this.#watcher = fs.watch(dir, { persistent: false }, () => this.#schedule());
    this.#watcher.on('error', (err) => {
      // e.g. the directory was removed; reload() (SIGHUP) still works, and a restart re-establishes the watch.
      this.#logger.error(
        { err, dir },
        'routing rules watcher failed; file changes are no longer picked up (SIGHUP still reloads)',
      );
      this.#watcher?.close();
      this.#watcher = undefined;
    });
  }

  close(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#watcher?.close();
    this.#watcher = undefined;
  }

  #schedule(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#reloadIfChanged();
    }, this.#debounceMs);
    this.#timer.unref();
  }

  #reloadIfChanged(): void {
    if (!this.#watcher) return; // closed while the timer was pending
    const text = readOrUndefined(this.path);
    // Missing file: most likely mid-replace by an editor; the event that recreates it triggers the reload.
    if (text === undefined || text === this.#lastText) return;
    this.#apply(text);
  }

  #apply(text: string): ReloadOutcome {
    this.#lastText = text;
    let rules: RuleSet;
    try {
      rules = parseRules(text, this.path, { telnyxTrunks: this.#telnyxTrunks });
    } catch (err) {
      return this.#failed(err as Error);
    }
    this.#rules = rules;
    this.#loadedAt = new Date();
    this.#lastFailure = undefined;
    this.#logger.info(
      { file: this.path, rules: rules.rules.length, defaultMode: rules.default.mode },
      'routing rules reloaded',
    );
    this.#warn(rules);
    this.emit('reloaded', rules);
    return { ok: true, rules };
  }

  /** One line per warning of the file, on every (re)load: each names file, rule, key and line. */
  #warn(rules: RuleSet): void {
    for (const w of rules.warnings) {
      this.#logger.warn(
        { file: this.path, rule: w.ruleName, line: w.line, key: w.key, warning: w.message },
        'routing rules warning',
      );
    }
  }

  #failed(err: Error): ReloadOutcome {
    this.#lastFailure = { at: new Date(), error: err };
    this.#logger.error(
      { err, file: this.path, keptRules: this.#rules?.rules.length },
      'routing rules reload failed; keeping the previous rules',
    );
    this.emit('reloadFailed', err);
    return { ok: false, error: err };
  }
}

function readOrUndefined(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
