/**
 * One instance per DATA_DIR, end to end. Instance A carries a live translated call; instance B is started on the same
 * data directory (other ports, as a second `npm start`, a second container on one volume or a blue/green deploy
 * would). B must refuse to start at once, naming A, and must not touch A's call: the row stays active, the Kallglot
 * session stays open until the call's real BYE ends it, exactly once, with the PBX's reason.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import net from 'node:net';
import { CallRegistry } from '../../../src/registry/call-registry.ts';
import { startGateway } from '../../helpers/gateway.ts';
import { TEST_TIMEOUT_MS, callRows, startRig, waitFor, waitForAnswered, type DurabilityRig } from './rig.ts';

let rig: DurabilityRig | undefined;
afterEach(async () => {
  await rig?.teardown();
  rig = undefined;
});

describe('DATA_DIR instance lock', () => {
  it('a second instance on the same DATA_DIR exits 3 naming the holder, and the live call of the first is untouched', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    const gwA = await r.startGateway();
    const uas = await r.startUas('uas-answer-200-expect-bye.xml', { timeoutSec: 60 });
    const pbx = await r.startPbx('uac-invite-200-then-bye.xml', { durationMs: 6_000, timeoutSec: 60 });
    await waitForAnswered(r);
    const [session] = r.sandbox.sessions();
    expect(session, r.diag()).toBeDefined();
    const callId = callRows(r.dataDir)[0]?.call_id;

    // B: same DATA_DIR, its own free ports. It must stop at the lock, before recovery or any bind.
    const started = Date.now();
    const gwB = await r.startGateway({}, { waitReady: false });
    const code = await gwB.exited;
    const d = () => `${r.diag()}\n--- B stderr\n${gwB.stderr()}`;
    expect(code, d()).toBe(3);
    expect(Date.now() - started, d()).toBeLessThan(10_000);
    expect(gwB.stderr(), d()).toContain(`in use by pid ${gwA.pid} on ${os.hostname()}`);
    expect(gwB.stderr(), d()).toContain('DATA_DIR');
    expect(
      gwB.logs.some((l) => l.msg === 'recovered state from a previous run'),
      d(),
    ).toBe(false);

    // A's call is untouched: row active, session open, no end requested.
    expect(
      callRows(r.dataDir).find((c) => c.call_id === callId),
      d(),
    ).toMatchObject({ state: 'active', end_reason: null });
    expect(r.sandbox.sessions()[0]!.endCalls, d()).toBe(0);
    expect(r.sandbox.stats().endRequests, d()).toBe(0);

    // The call ends for real when the PBX hangs up: one end, the PBX's reason.
    const [pbxResult, uasResult] = await Promise.all([pbx.done, uas.done]);
    const d2 = () => r.diag(pbxResult, uasResult);
    expect(pbxResult.exitCode, d2()).toBe(0);
    expect(uasResult.exitCode, d2()).toBe(0);
    const ended = await waitFor(
      () => (r.sandbox.sessions()[0]?.endCalls ? r.sandbox.sessions()[0] : undefined),
      10_000,
      d2,
    );
    expect(ended, d2()).toMatchObject({ id: session!.id, endCalls: 1, endReason: 'agent_hangup' });
    expect(callRows(r.dataDir)[0], d2()).toMatchObject({ state: 'ended', end_reason: 'bye_from_pbx' });

    // Once A stops cleanly the directory is free again: a new instance takes it.
    await gwA.stop();
    expect(await gwA.exited).toBe(0);
    const gwC = await r.startGateway();
    expect(
      gwC.logs.some((l) => l.msg === 'kallglot-sip-gateway started'),
      r.diag(),
    ).toBe(true);
    expect(r.sandbox.stats(), r.diag()).toMatchObject({ created: 1, endRequests: 1 });
  });

  it("the lock is the kernel's: SIGKILL frees it, the restarted instance takes it, a clean stop removes the holder record", {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-lock-'));
    try {
      const a = await startGateway({ dataDir });
      a.signal('SIGKILL');
      expect(await a.exited).toBe('SIGKILL');
      expect(fs.existsSync(path.join(dataDir, 'gateway.lock.json'))).toBe(true); // a stale holder record is harmless
      const b = await startGateway({ dataDir });
      expect(b.logs.some((l) => l.msg === 'kallglot-sip-gateway started')).toBe(true);
      const holder = JSON.parse(fs.readFileSync(path.join(dataDir, 'gateway.lock.json'), 'utf8')) as { pid: number };
      expect(holder.pid).toBe(b.pid);
      await b.stop();
      expect(await b.exited).toBe(0);
      expect(fs.existsSync(path.join(dataDir, 'gateway.lock.json'))).toBe(false);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

describe('ports are bound before recovery', () => {
  it('a busy HTTP_PORT stops start-up naming the setting, and the orphan in DATA_DIR is left for a daemon that can run', {
    timeout: TEST_TIMEOUT_MS,
  }, async () => {
    const r = (rig = await startRig());
    // An orphan as a crashed daemon leaves it: active, with an open session.
    const { id: sessionId } = await createSandboxSession(r);
    const old = new CallRegistry(r.dataDir, { instanceId: 'old-instance' });
    old.callStarted({ callId: 'orphan-1', from: '+1555', to: '+4930' });
    old.update('orphan-1', { sessionId, route: 'translated' });
    old.close();
    const blocker = net.createServer();
    await new Promise<void>((res) => blocker.listen(0, '127.0.0.1', res));
    const busyPort = (blocker.address() as net.AddressInfo).port;
    try {
      const gw = await r.startGateway({ HTTP_PORT: String(busyPort) }, { waitReady: false });
      expect(await gw.exited, gw.stderr()).toBe(1);
      expect(gw.stderr()).toContain(
        `cannot listen on 127.0.0.1:${busyPort} (HTTP_PORT): the address is already in use`,
      );
      expect(callRows(r.dataDir)[0]).toMatchObject({ call_id: 'orphan-1', state: 'active' });
      expect(r.sandbox.stats().endRequests).toBe(0);
    } finally {
      await new Promise((res) => blocker.close(res));
    }
    // With its ports free, the next start recovers it once, naming who left it.
    const gw = await r.startGateway();
    const line = await gw.waitForLog((l) => l.msg === 'orphaned call from a previous run closed');
    expect(line).toMatchObject({ callId: 'orphan-1', sessionId, leftBy: 'old-instance' });
    await waitFor(
      () => r.sandbox.sessions()[0]?.endCalls === 1,
      10_000,
      () => r.diag(),
    );
    expect(r.sandbox.sessions()[0]).toMatchObject({ endReason: 'error' });
  });
});

async function createSandboxSession(r: DurabilityRig): Promise<{ id: string }> {
  const res = await fetch(`${r.sandbox.url}/sessions`, {
    method: 'POST',
    headers: { authorization: 'Bearer sk_test_durability', 'content-type': 'application/json' },
    body: JSON.stringify({ mode: 'bidirectional_translation', source_language: 'de', target_language: 'en' }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string };
}
