/**
 * The real entry point (`node src/main.ts`) as a child process: the command line runs before anything else (no
 * config loaded, no port bound, no DATA_DIR lock taken), and configuration errors exit 2 listing every problem.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');

const children = new Set<ChildProcess>();
const dirs: string[] = [];
const holders: Array<{ close(): void }> = [];
afterEach(() => {
  for (const c of children) c.kill('SIGKILL');
  children.clear();
  for (const h of holders.splice(0)) h.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Ran {
  code: number | null;
  out: string;
  err: string;
}

function run(args: string[], env: Record<string, string>): Promise<Ran> {
  const child = spawn(NODE, ['src/main.ts', ...args], {
    cwd: ROOT,
    env: { PATH: `${path.join(ROOT, 'node_modules/.bin')}:${process.env.PATH ?? ''}`, HOME: os.tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
  child.stderr.setEncoding('utf8').on('data', (c: string) => (err += c));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      children.delete(child);
      resolve({ code, out, err });
    });
  });
}

/** SIP (TCP and UDP) and HTTP ports held busy by this test: a command that tried to bind them would fail. */
async function busyPorts(): Promise<{ sip: number; http: number }> {
  const listen = (port = 0): Promise<net.Server> =>
    new Promise((resolve, reject) => {
      const srv = net.createServer();
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => resolve(srv));
    });
  const sipTcp = await listen();
  const httpTcp = await listen();
  holders.push(sipTcp, httpTcp);
  const sip = (sipTcp.address() as net.AddressInfo).port;
  const udp = dgram.createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(sip, '127.0.0.1', () => resolve());
  });
  holders.push(udp);
  return { sip, http: (httpTcp.address() as net.AddressInfo).port };
}

let dataDir = '';
let env: Record<string, string> = {};
beforeEach(async () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-main-'));
  dirs.push(parent);
  // Never created by a command: proof that no DATA_DIR lock was taken.
  dataDir = path.join(parent, 'data');
  const ports = await busyPorts();
  env = {
    SIP_HOST: '127.0.0.1',
    SIP_PORT: String(ports.sip),
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(ports.http),
    DATA_DIR: dataDir,
  };
});

describe('node src/main.ts (kallglot-gw)', () => {
  it.each([['--help'], ['--version']])('%s binds no port, takes no lock and loads no config', async (arg) => {
    // A config that could not even load, on ports held busy: --help and --version must not care.
    const r = await run([arg], { ...env, GATEWAY_CONFIG: '/nonexistent/gw.yaml', TELNYX_STREAM_ON_ANSWER: 'maybe' });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(arg === '--help' ? /Usage:[\s\S]*kallglot-gw --check/ : /^kallglot-gw \d+\.\d+\.\d+\n$/);
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('--check validates on busy ports without binding or locking: exit 0, then 2 on a bad setting', async () => {
    const ok = await run(['--check'], env);
    expect(ok.err).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.out).toContain('configuration OK');
    const bad = await run(['--check'], { ...env, MAX_CALLS_PER_SECOND: 'many' });
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('MAX_CALLS_PER_SECOND (calls.maxCallsPerSecond) = "many"');
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('a bad environment stops start-up with exit 2, every problem named by its env var', async () => {
    const r = await run([], {
      ...env,
      SIP_PORT: 'abc',
      TELNYX_STREAM_ON_ANSWER: 'maybe',
      KALLGLOT_API_URL: 'api.kallglot.com',
    });
    expect(r.code).toBe(2);
    expect(r.err).toContain('invalid configuration (3 problems)');
    expect(r.err).toContain('SIP_PORT (sip.port) = "abc"');
    expect(r.err).toContain('TELNYX_STREAM_ON_ANSWER (telnyx.streamOnAnswer) = "maybe"');
    expect(r.err).toContain('KALLGLOT_API_URL (kallglot.apiUrl) = "api.kallglot.com"');
    expect(r.err).toContain('(no scheme given)');
    expect(fs.existsSync(dataDir)).toBe(false);
  });

  it('NODE_ENV=production without KALLGLOT_API_URL or KALLGLOT_SANDBOX=true exits 2 saying what to set', async () => {
    const r = await run([], { ...env, NODE_ENV: 'production' });
    expect(r.code).toBe(2);
    expect(r.err).toContain(
      'NODE_ENV=production and no Kallglot account: set KALLGLOT_API_URL and KALLGLOT_API_KEY, or set KALLGLOT_SANDBOX=true',
    );
    expect(r.out).toBe('');
    expect(fs.existsSync(dataDir)).toBe(false);
  });
});
