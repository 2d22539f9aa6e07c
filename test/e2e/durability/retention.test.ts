/**
 * Registry retention in the real daemon: a registry left by a previous run holds calls that ended long ago, a recent
 * one, one still waiting for its Kallglot session end, and an active call of another (crashed) run. At start-up the
 * daemon prunes only the old ended call, logs it, and leaves the rest to recovery and the operator.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CallRegistry } from '../../../src/registry/call-registry.ts';
import { type GatewayProcess, startGateway } from '../../helpers/gateway.ts';

const DAY = 86_400_000;
let gw: GatewayProcess | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await gw?.stop();
  gw = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function previousRun(dataDir: string): void {
  const reg = new CallRegistry(dataDir, { instanceId: 'previous' });
  const now = Date.now();
  const ended = (id: string, daysAgo: number): void => {
    reg.callStarted({ callId: id }, now - daysAgo * DAY - 60_000);
    reg.addEvent(id, 'sip.bye', null, `${id}:bye`, now - daysAgo * DAY);
    reg.callEnded(id, { reason: 'bye_from_pbx', sipStatus: 200 }, now - daysAgo * DAY);
  };
  ended('ancient', 40);
  ended('recent', 2);
  ended('pending-end', 40);
  reg.update('pending-end', { sessionId: 'sess_pending' });
  reg.addPendingEnd('sess_pending', 'pending-end', 'agent_hangup');
  reg.callStarted({ callId: 'texml-live', kind: 'texml' }, now - 50 * DAY); // TeXML calls survive a restart
  reg.close();
}

describe('registry retention', () => {
  it('prunes old ended calls at start-up, and nothing else', { timeout: 30_000 }, async () => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-retention-'));
    dirs.push(dataDir);
    previousRun(dataDir);
    gw = await startGateway({ dataDir, env: { REGISTRY_RETENTION_DAYS: '30', KALLGLOT_SANDBOX: 'true' } });
    const pruned = await gw.waitForLog((l) => l.msg === 'registry retention: pruned ended calls', 10_000);
    expect(pruned).toMatchObject({ level: 'info', component: 'retention', prunedCalls: 1, prunedEvents: 1 });
    await gw.stop();

    const reg = new CallRegistry(dataDir);
    try {
      expect(reg.get('ancient')).toBeUndefined();
      expect(reg.events('ancient')).toEqual([]);
      expect(reg.get('recent')?.state).toBe('ended');
      // Its end was still pending when the start-up pass ran (recovery resumes it; the answer comes later).
      expect(reg.get('pending-end')).toBeDefined();
      expect(reg.get('texml-live')?.state).toBe('active');
    } finally {
      reg.close();
    }
  });
});
