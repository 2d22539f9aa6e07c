/**
 * `kallglot-gw calls | reload | drain` run in-process against a real daemon: the daemon found from the same
 * configuration (HTTP_HOST/HTTP_PORT, ADMIN_TOKEN) or --url/--token, readable output, and clear failures.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  formatAge,
  formatCallsTable,
  runCallsCommand,
  runDrainCommand,
  runReloadCommand,
} from '../../src/cli/admin-commands.ts';
import type { CliCommand } from '../../src/cli/command.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import { ADMIN_TOKEN, TEST_TIMEOUT_MS, startRig, waitForAnswered, type DurabilityRig } from '../e2e/durability/rig.ts';

let rig: DurabilityRig | undefined;
let gateway: GatewayProcess | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
  await gateway?.stop();
  gateway = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

interface Ran {
  code: number;
  out: string;
  err: string;
}

async function cli(cmd: CliCommand, argv: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  let out = '';
  let err = '';
  const code = await cmd({
    argv,
    env,
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

/** The environment an operator's shell on the gateway host has: the daemon's own settings. */
function daemonEnv(gw: GatewayProcess, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { HTTP_HOST: '0.0.0.0', HTTP_PORT: String(gw.httpPort), ADMIN_TOKEN, ...extra };
}

function rulesFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-cli-'));
  dirs.push(dir);
  const file = path.join(dir, 'routing.yaml');
  fs.writeFileSync(file, text);
  return file;
}

describe('kallglot-gw calls / drain', () => {
  it('lists the call in progress as a table, then drains: prints the count and the daemon exits 0', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway({ DRAIN_TIMEOUT_SEC: '20' });
    const env = daemonEnv(gw);
    const idle = await cli(runCallsCommand, [], env);
    expect(idle).toEqual({ code: 0, out: 'no active calls\n', err: '' });

    const uas = await r.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 4000 });
    await waitForAnswered(r);
    const listed = await cli(runCallsCommand, [], env);
    expect(listed.code, listed.err).toBe(0);
    const lines = listed.out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CALL ID\s+FROM\s+TO\s+ROUTE\s+SESSION\s+AGE$/);
    expect(lines).toHaveLength(3);
    const session = r.sandbox.sessions()[0]?.id ?? '';
    expect(session).toMatch(/^sess_/);
    expect(lines[1]).toMatch(new RegExp(`^\\S+\\s+\\S+\\s+\\+4930123456\\s+translated\\s+${session}\\s+\\d+s$`));
    expect(lines[2]).toBe('1 active call');
    const json = await cli(runCallsCommand, ['--json'], env);
    expect(JSON.parse(json.out)).toMatchObject([{ session_id: session, route: 'translated', state: 'active' }]);

    const drained = await cli(runDrainCommand, [], env);
    expect(drained.code, drained.err).toBe(0);
    expect(drained.out).toBe(
      'draining: new calls get 503; 1 active call may finish within 20 s, then the gateway stops\n',
    );
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    expect(await gw.exited, r.diag(pbxResult, uasResult)).toBe(0);
    expect(pbxResult.exitCode, r.diag(pbxResult, uasResult)).toBe(0);
  });
});

describe('kallglot-gw reload', () => {
  it('prints the new rule count, or the refusal with file, rule, key and line (exit 1)', {
    timeout: 30_000,
  }, async () => {
    const file = rulesFile('default:\n  mode: bypass\n');
    const gw = (gateway = await startGateway({ env: { ADMIN_TOKEN, ROUTING_FILE: file } }));
    // --url and --token alone: no configuration needed.
    const flags = ['--url', `http://127.0.0.1:${gw.httpPort}/`, '--token', ADMIN_TOKEN];

    fs.writeFileSync(file, 'rules:\n  - name: a\n    match: {}\n    mode: bypass\ndefault:\n  mode: bypass\n');
    const ok = await cli(runReloadCommand, flags);
    expect(ok).toEqual({ code: 0, out: `routing rules reloaded from ${file}: 1 rule, default bypass\n`, err: '' });

    fs.writeFileSync(
      file,
      'rules:\n  - name: b\n    match: {}\n    mode: bypass\n    colour: red\ndefault:\n  mode: bypass\n',
    );
    const refused = await cli(runReloadCommand, flags);
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toContain('the routing rules were refused; the previous 1 rule(s) stay in force:');
    expect(refused.err).toMatch(new RegExp(`routing rules ${file}, line 5.*rules\\[0\\] \\("b"\\).*colour`));
  });
});

describe('kallglot-gw admin commands: failures', () => {
  it('says so when the daemon is not reachable', async () => {
    const port = await freePort('tcp');
    for (const cmd of [runCallsCommand, runReloadCommand, runDrainCommand]) {
      const r = await cli(cmd, [], { HTTP_HOST: '127.0.0.1', HTTP_PORT: String(port), ADMIN_TOKEN });
      expect(r.code).toBe(1);
      expect(r.err).toContain(`cannot reach the gateway at http://127.0.0.1:${port} (ECONNREFUSED)`);
    }
  });

  it('says so when the token is wrong, missing, or the admin API is disabled', { timeout: 30_000 }, async () => {
    const gw = (gateway = await startGateway({ env: { ADMIN_TOKEN } }));
    const wrong = await cli(runCallsCommand, ['--token', 'nope'], daemonEnv(gw));
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('refused the admin token (401)');

    const missing = await cli(runDrainCommand, [], daemonEnv(gw, { ADMIN_TOKEN: '' }));
    expect(missing.code).toBe(2);
    expect(missing.err).toContain('no admin token: pass --token or set ADMIN_TOKEN');
    expect((await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`)).status).toBe(200); // nothing was drained

    const bad = await cli(runReloadCommand, ['--bogus'], daemonEnv(gw));
    expect(bad.code).toBe(2);
    expect(bad.err).toContain("Unknown option '--bogus'");
    expect(bad.err).toContain('usage: kallglot-gw reload');

    await gw.stop();
    const disabled = (gateway = await startGateway());
    const off = await cli(runCallsCommand, ['--token', 'x'], daemonEnv(disabled));
    expect(off.code).toBe(1);
    expect(off.err).toContain('the admin API is disabled on the gateway');
  });
});

describe('formatCallsTable', () => {
  it('pads columns, shows - for missing values and a readable age', () => {
    const now = 10_000_000;
    const table = formatCallsTable(
      [
        {
          call_id: 'abc',
          from_user: '100',
          to_user: '+4930123456',
          route: 'translated',
          session_id: 'sess_1',
          invite_at: now - 75_000,
        },
        {
          call_id: 'a-much-longer-call-id',
          from_user: null,
          to_user: '112',
          route: null,
          session_id: null,
          invite_at: now - 4_000,
        },
      ],
      now,
    );
    expect(table).toBe(
      [
        'CALL ID                FROM  TO           ROUTE       SESSION  AGE',
        'abc                    100   +4930123456  translated  sess_1   1m15s',
        'a-much-longer-call-id  -     112          -           -        4s',
        '2 active calls',
        '',
      ].join('\n'),
    );
    expect(formatAge(3 * 3600_000 + 5 * 60_000)).toBe('3h05m');
  });
});
