/**
 * The README's test-call recipe works when pasted into an interactive shell: the commands of the fenced block after
 * `<!-- test-call-recipe -->` in README.md are typed, in order and as written, into an interactive bash on a
 * pseudo-terminal (util-linux `script`), the daemon going to the background as the recipe says. A terminal matters:
 * without one, a `sipp … &` is never stopped (SIGTTOU) and a foreground SIPp never eats the lines pasted after it,
 * so a plain `bash -c` passes recipes that fail at a terminal (the README's earlier recipe was one).
 *
 * What the test changes, and nothing else:
 *  - port numbers (those after `127.0.0.1:`, `-p ` and `_PORT=`) become free ports, so the run collides neither with
 *    a daemon on the README's ports nor with parallel tests; README.md keeps its literal ports;
 *  - after each command not sent to the background it types a line echoing the command's exit status, so the PBX
 *    SIPp's own status (and the daemon's, through `wait`) is known;
 *  - the environment: TMPDIR points into a directory this test owns, so the recipe's `mktemp -d` (the daemon's
 *    DATA_DIR and log) lands there, is found and removed; LOG_FORMAT=json (what the daemon picks for a file anyway);
 *    TERM for SIPp's screen; HISTFILE, so the interactive bash leaves the user's history alone.
 * Everything the recipe starts is checked to be gone afterwards, and killed if it is not.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
const MARKER = '<!-- test-call-recipe';
const PORT = /(?<=127\.0\.0\.1:|-p |_PORT=)\d{2,5}\b/g;
/** Cursor moves and colours of SIPp's screen and readline: dropped to read the terminal as text. */
const TERMINAL_CONTROL = new RegExp(`${String.fromCharCode(27)}\\[[0-9;?]*[A-Za-z]`, 'g');

/** The commands of the recipe's ```sh block, one per line, as README.md has them. */
function recipeLines(): string[] {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const at = readme.indexOf(MARKER);
  if (at < 0) throw new Error(`README.md has no ${MARKER} marker`);
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(at));
  if (block === null) throw new Error(`no \`\`\`sh block after ${MARKER} in README.md`);
  return (block[1] ?? '').split('\n').filter((l) => l.trim() !== '');
}

async function withFreePorts(lines: string[]): Promise<string[]> {
  const literal = [...new Set(lines.join('\n').match(PORT) ?? [])];
  const free = new Map<string, string>();
  for (const p of literal) free.set(p, String(await freePort('both')));
  return lines.map((l) => l.replace(PORT, (p) => free.get(p) ?? p));
}

/** A command line ending in `&` (before any comment): started in the background. */
function isBackground(line: string): boolean {
  return /&\s*(#.*)?$/.test(line) && !/&&\s*(#.*)?$/.test(line);
}

function instrumented(lines: string[]): string {
  return lines
    .flatMap((line, i) => (isBackground(line) ? [line] : [line, `echo "::recipe-status ${i} $?"`]))
    .join('\n');
}

let tmp: string | undefined;

/**
 * Every process the recipe started, found by the TMPDIR this test gave the shell (a fresh directory name, inherited
 * by everything started from it), whatever the recipe did with its pids or DATA_DIR.
 */
function startedByRecipe(dir: string): Array<{ pid: number; cmd: string }> {
  const mark = `TMPDIR=${dir}\0`;
  return fs.readdirSync('/proc').flatMap((entry) => {
    if (!/^\d+$/.test(entry)) return [];
    try {
      if (!`${fs.readFileSync(`/proc/${entry}/environ`, 'latin1')}\0`.includes(`\0${mark}`)) return [];
      const cmd = fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1').replaceAll('\0', ' ').trim();
      return cmd === '' ? [] : [{ pid: Number(entry), cmd }]; // '' : a zombie, already gone
    } catch {
      return []; // exited meanwhile, or not ours to read
    }
  });
}

async function leftAfter(dir: string, graceMs: number): Promise<string[]> {
  for (const until = Date.now() + graceMs; Date.now() < until; await new Promise((r) => setTimeout(r, 50))) {
    if (startedByRecipe(dir).length === 0) return [];
  }
  return startedByRecipe(dir).map((p) => `${p.pid} ${p.cmd}`);
}

afterEach(() => {
  if (tmp === undefined) return;
  for (const { pid } of startedByRecipe(tmp)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited since the scan
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
  tmp = undefined;
});

/** Types `input` into an interactive bash on a pseudo-terminal; resolves with what the terminal showed. */
function typeIntoInteractiveBash(input: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<string> {
  const child = spawn('script', ['-qec', 'bash --norc --noprofile -i', '/dev/null'], {
    cwd: ROOT,
    env,
    detached: true,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let screen = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (screen += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (screen += c));
  // Pasted at once, like a user would, then `exit`: the end of script(1)'s input alone does not end the shell once a
  // foreground program has had the terminal (seen with util-linux 2.38).
  child.stdin.end(`${input}\nexit\n`);
  return new Promise((resolve) => {
    // A hung recipe: closing the terminal hangs up the shell and its foreground job; afterEach kills the rest.
    const timer = setTimeout(() => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
    }, timeoutMs);
    child.once('close', () => {
      clearTimeout(timer);
      resolve(screen);
    });
    // No `script` (util-linux): say so in the assertion messages rather than crash on the pipe.
    child.stdin.on('error', () => {});
    child.once('error', (err) => {
      clearTimeout(timer);
      resolve(`${screen}\n[cannot run script(1) from util-linux: ${err.message}]`);
    });
  });
}

function jsonLines(text: string): Array<Record<string, unknown>> {
  return text.split('\n').flatMap((l) => {
    try {
      return [JSON.parse(l) as Record<string, unknown>];
    } catch {
      return []; // not a log record
    }
  });
}

describe('README test-call recipe', () => {
  it('pasted into an interactive bash (free ports), places a translated call and stops what it started', {
    timeout: 90_000,
  }, async () => {
    const lines = recipeLines();
    const uac = lines.findIndex((l) => /^sipp \S+:\d+ /.test(l));
    expect(uac, `no PBX (UAC) sipp line in the recipe:\n${lines.join('\n')}`).toBeGreaterThanOrEqual(0);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-readme-recipe-'));
    const input = instrumented(await withFreePorts(lines));
    const env = {
      ...process.env,
      TMPDIR: tmp,
      LOG_FORMAT: 'json',
      TERM: process.env.TERM ?? 'xterm',
      HISTFILE: path.join(tmp, '.bash_history'),
    };
    const screen = (await typeIntoInteractiveBash(input, env, 75_000)).replace(TERMINAL_CONTROL, '');
    const diag = `typed:\n${input}\n--- terminal (tail)\n${screen.slice(-6000)}`;

    const status = new Map([...screen.matchAll(/::recipe-status (\d+) (\d+)/g)].map((m) => [+m[1]!, +m[2]!]));
    expect(status.get(uac), `the PBX's SIPp\n${diag}`).toBe(0);
    // Every other command too (mktemp, the daemon's stop and exit status, the grep), except `sipp -bg`: the process
    // the shell waits for only forks the background SIPp and exits 99, SIPp's "no call processed".
    const checked = (l: string): boolean => !isBackground(l) && !/^sipp .* -bg\b/.test(l);
    const failed = lines.flatMap((l, i) =>
      checked(l) && status.get(i) !== 0 ? [`${status.get(i) ?? 'never ran'}: ${l}`] : [],
    );
    expect(failed, diag).toEqual([]);

    const dataDirs = fs.readdirSync(tmp, { withFileTypes: true }).filter((d) => d.isDirectory());
    expect(dataDirs.length, diag).toBe(1);
    const log = fs.readFileSync(path.join(tmp, dataDirs[0]!.name, 'gateway.log'), 'utf8');
    const records = jsonLines(log);
    const summaries = records.filter((l) => l.msg === 'call summary');
    expect(summaries, `${diag}\n--- gateway.log\n${log.slice(-4000)}`).toHaveLength(1);
    expect(summaries[0], diag).toMatchObject({ route: 'translated', sipStatus: 200 });
    expect(screen, 'the recipe shows the call summary').toMatch(/"msg":"call summary"/);

    // The recipe's own stop: the daemon exits cleanly, the background UAS ends with its call, nothing is left.
    expect(
      records.some((l) => l.msg === 'stopped'),
      diag,
    ).toBe(true);
    expect(screen, diag).toMatch(/Background mode - PID=\[\d+\]/);
    expect(await leftAfter(tmp, 5000), diag).toEqual([]);
  });
});
