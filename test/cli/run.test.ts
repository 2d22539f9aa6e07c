/** The kallglot-gw dispatcher, in-process: help, version, usage errors, and each command reached by its name. */
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../../src/cli/run.ts';
import { captureIo } from './io.ts';

const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
  bin: Record<string, string>;
};

describe('kallglot-gw', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the usage with every command and the exit codes', async (arg) => {
    const io = captureIo([arg]);
    expect(await runCli(io)).toBe(0);
    for (const word of ['--check', 'route', 'calls', 'reload', 'drain', '--version', 'Exit codes: 0 ok']) {
      expect(io.out).toContain(word);
    }
    expect(io.err).toBe('');
  });

  it.each([['--version'], ['-V']])('%s prints the version from package.json', async (arg) => {
    const io = captureIo([arg]);
    expect(await runCli(io)).toBe(0);
    expect(io.out).toBe(`kallglot-gw ${pkg.version}\n`);
  });

  it('is the package bin, pointing at the entry point', () => {
    expect(pkg.bin['kallglot-gw']).toBe('src/main.ts');
    expect(fs.readFileSync(new URL('../../src/main.ts', import.meta.url), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('exits 2 with the usage on an unknown command or option', async () => {
    for (const argv of [['frobnicate'], ['--frobnicate']]) {
      const io = captureIo(argv);
      expect(await runCli(io)).toBe(2);
      expect(io.err).toContain('frobnicate');
      expect(io.err).toContain('Usage:');
    }
  });

  it('hands the remaining arguments to the named command', async () => {
    const route = captureIo(['route', '--help']);
    expect(await runCli(route)).toBe(0);
    expect(route.out).toContain('kallglot-gw route --called');
    for (const name of ['calls', 'reload', 'drain']) {
      const io = captureIo([name, '--help']);
      expect(await runCli(io)).toBe(0);
      expect(io.out).toContain(`kallglot-gw ${name}`);
    }
  });
});
