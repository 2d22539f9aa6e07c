/**
 * POST /admin/drain on the real daemon: the same graceful stop as SIGTERM. New INVITEs get 503 + Retry-After,
 * /readyz turns 503 at once, the call in progress finishes normally, then the process exits 0.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type GatewayProcess } from '../helpers/gateway.ts';
import {
  ADMIN_TOKEN,
  TEST_TIMEOUT_MS,
  findMessages,
  headerOf,
  startRig,
  waitForAnswered,
  type DurabilityRig,
} from '../e2e/durability/rig.ts';

let rig: DurabilityRig | undefined;
let gateway: GatewayProcess | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
  await gateway?.stop();
  gateway = undefined;
});

async function post(port: number, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('POST /admin/drain (real daemon)', () => {
  it('on an idle gateway: answers 202 with no active calls, then the process exits 0', {
    timeout: 30_000,
  }, async () => {
    const gw = (gateway = await startGateway({ env: { ADMIN_TOKEN } }));
    const res = await post(gw.httpPort, '/admin/drain');
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({ draining: true, activeCalls: 0, alreadyDraining: false });
    expect(await gw.exited).toBe(0);
    expect(gw.logs.some((l) => l.msg === 'shutting down' && l.signal === 'POST /admin/drain')).toBe(true);
    expect(gw.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });

  it('with a call in progress: /readyz 503 and new INVITEs 503 at once, the call finishes, then exit 0', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gw = await r.startGateway({ DRAIN_TIMEOUT_SEC: '20' });
    const uas = await r.startUas('uas-answer-200-expect-bye.xml');
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 3000 });
    await waitForAnswered(r);

    const res = await post(gw.httpPort, '/admin/drain');
    expect(res.status, r.diag()).toBe(202);
    expect(res.body).toMatchObject({ draining: true, activeCalls: 1, alreadyDraining: false, drainTimeoutSec: 20 });
    const ready = await fetch(`http://127.0.0.1:${gw.httpPort}/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ ready: false, draining: true, activeCalls: 1 });

    const late = await (await r.startPbx('uac-invite-expect-503.xml', { timeoutSec: 10 })).done;
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const code = await gw.exited;
    const d = () => r.diag(pbxResult, uasResult, late);

    expect(late.exitCode, d()).toBe(0);
    const refused = findMessages(late.messages, 'received', 'SIP/2.0 503');
    expect(Number(headerOf(refused[0]?.text ?? '', 'Retry-After')), d()).toBeGreaterThan(0);
    expect(pbxResult.exitCode, d()).toBe(0);
    expect(uasResult.exitCode, d()).toBe(0);
    expect(code, d()).toBe(0);
    const answered = gw.summaries().filter((s) => s.route === 'translated');
    expect(answered[0], d()).toMatchObject({ endReason: 'bye_from_pbx', sipStatus: 200 });
    expect(gw.logs.some((l) => l.msg === 'drain timeout: hanging up remaining calls')).toBe(false);
    expect(r.sandbox.stats(), d()).toMatchObject({ created: 1, ended: 1 });
  });
});
