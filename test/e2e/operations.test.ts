/**
 * Operating the real daemon: routing rules reloaded on SIGHUP without a restart (a bad file is refused and the old
 * rules stay), and a GATEWAY_CONFIG file layered under env.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LEVEL_VALUES } from '../../src/logger.ts';
import { levelValue } from '../helpers/gateway.ts';
import { findMessages, startE2e, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await env?.teardown();
  env = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-ops-'));
  dirs.push(d);
  return d;
}

const BYPASS_ALL = 'default:\n  mode: bypass\n';
const TRANSLATE_ALL = 'default:\n  mode: bidirectional_translation\n  source_language: de\n  target_language: en\n';

async function call(e: E2eEnv): Promise<string> {
  const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
  await uas.ready;
  const uac = await e.sipp({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    service: '+15550100',
    calls: 1,
    timeoutSec: 15,
  }).done;
  const telnyx = await uas.done;
  expect(uac.exitCode, e.diag(uac, telnyx)).toBe(0);
  expect(telnyx.exitCode, e.diag(uac, telnyx)).toBe(0);
  const invite = findMessages(telnyx.messages, 'received', 'INVITE ')[0];
  return invite?.startLine ?? '';
}

describe('operations', () => {
  it('SIGHUP (or the file watcher, whichever comes first) reloads the routing rules; a broken file is refused and the previous rules stay', {
    timeout: 60_000,
  }, async () => {
    const dir = tmpDir();
    const rules = path.join(dir, 'routing.yaml');
    fs.writeFileSync(rules, BYPASS_ALL);
    const e = (env = await startE2e({ ROUTING_FILE: rules }));

    expect(await call(e)).toMatch(/^INVITE sip:\+15550100@sip\.telnyx\.com /);
    expect(e.sandbox.stats().createRequests).toBe(0);

    fs.writeFileSync(rules, TRANSLATE_ALL);
    e.gw.signal('SIGHUP');
    await e.gw.waitForLog((l) => l.msg === 'routing rules reloaded', 5000);
    expect(await call(e)).toMatch(/^INVITE sip:sess_[0-9a-f]+@sip\.telnyx\.com /);
    expect(e.sandbox.stats().created).toBe(1);

    // A file with an invalid language code: refused with the key named, the translated rules stay in force.
    fs.writeFileSync(
      rules,
      'default:\n  mode: bidirectional_translation\n  source_language: klingon-xx-yy\n  target_language: en\n',
    );
    const before = e.gw.logs.length;
    e.gw.signal('SIGHUP');
    const refused = await waitFor(
      () => e.gw.logs.slice(before).find((l) => levelValue(l) >= LEVEL_VALUES.error),
      5000,
      () => e.diag(),
    );
    expect(JSON.stringify(refused)).toMatch(/source_language/);
    expect(await call(e)).toMatch(/^INVITE sip:sess_/);
    expect(e.sandbox.stats().created).toBe(2);
    await waitFor(
      () => e.sandbox.stats().ended === 2 || undefined,
      5000,
      () => e.diag(),
    );
  });

  it('reads a GATEWAY_CONFIG file, with env taking precedence over it', { timeout: 60_000 }, async () => {
    const dir = tmpDir();
    const file = path.join(dir, 'gateway.yaml');
    // The file asks for a different direct-route template and a tiny concurrency limit; env overrides the latter.
    fs.writeFileSync(
      file,
      'telnyx:\n  directUriTemplate: "sip:direct-{called}@{domain}"\ncalls:\n  maxConcurrent: 0\n',
    );
    const e = (env = await startE2e({
      GATEWAY_CONFIG: file,
      MAX_CONCURRENT_CALLS: '10',
      ROUTING_FILE: writeRules(dir, BYPASS_ALL),
    }));
    expect(await call(e)).toMatch(/^INVITE sip:direct-\+15550100@sip\.telnyx\.com /);
    const logged = await e.gw.waitForLog((l) => l.msg === 'effective configuration'); // debug: e2e daemons log it
    expect((logged.config as { calls: { maxConcurrent: number } }).calls.maxConcurrent).toBe(10);
  });
});

function writeRules(dir: string, text: string): string {
  const file = path.join(dir, 'routing.yaml');
  fs.writeFileSync(file, text);
  return file;
}
