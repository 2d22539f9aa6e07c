/**
 * End to end, the daemon's own output (stdout is a pipe here, so LOG_FORMAT=auto gives JSON): a short start-up
 * line, the whole config at debug with secrets as set/unset, level names and ISO times, and no line of a real
 * translated call (SIPp PBX → gateway → SIPp Telnyx, Kallglot sandbox) with a repeated key.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LEVEL_VALUES } from '../../src/logger.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';
import { startE2e, TRANSLATED_NUMBER, waitFor, type E2eEnv } from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

describe('daemon log lines', () => {
  it('start-up line, config at debug, and a translated call without a repeated key', { timeout: 60_000 }, async () => {
    const e = (env = await startE2e({ ADMIN_TOKEN: 'admin-SECRET-1' }));
    const started = e.gw.logs.find((l) => l.msg === 'kallglot-sip-gateway started');
    expect(started).toMatchObject({
      level: 'info',
      version: expect.any(String),
      sip: `127.0.0.1:${e.gw.sipPort} (udp,tcp)`,
      http: `127.0.0.1:${e.gw.httpPort}`,
      engine: 'embedded',
      kallglot: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+/),
      routingRules: expect.any(Number),
      instanceId: expect.stringMatching(new RegExp(`:${e.gw.sipPort}$`)), // default: hostname:SIP_PORT
    });
    expect(started).not.toHaveProperty('config');
    const config = e.gw.logs.find((l) => l.msg === 'effective configuration');
    expect(config?.level).toBe('debug');
    expect(config?.config).toMatchObject({
      kallglot: { apiKey: 'set' },
      http: { adminToken: 'set' },
      telnyx: { apiKey: 'unset', sipPassword: 'unset' },
    });

    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
    await uas.ready;
    const uac = e.sipp({
      scenario: 'uac-invite-200-then-bye.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: TRANSLATED_NUMBER,
      calls: 1,
      durationMs: 200,
      timeoutSec: 15,
    });
    const [uacResult, uasResult] = [await uac.done, await uas.done];
    const d = () => e.diag(uacResult, uasResult);
    expect(uacResult.exitCode, d()).toBe(0);
    await waitFor(() => e.sandbox.stats().ended === 1, 10_000, d);
    await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
    await e.gw.stop(); // the shutdown lines too

    const msgs = e.gw.logs.map((l) => l.msg);
    for (const m of ['new call', 'Kallglot session created', 'call answered and bridged', 'call summary', 'stopped'])
      expect(msgs, d()).toContain(m);
    expect(e.gw.rawLogs.length).toBe(e.gw.logs.length);
    for (const raw of e.gw.rawLogs) expect(duplicateKeys(raw), raw).toEqual([]);
    for (const l of e.gw.logs) {
      expect(Object.keys(LEVEL_VALUES), JSON.stringify(l)).toContain(l.level);
      expect(l.time, JSON.stringify(l)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    }
    expect(e.gw.rawLogs.join('\n')).not.toContain('admin-SECRET-1');
  });
});
