import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { InstanceLock, InstanceLockedError } from '../../src/registry/instance-lock.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmpDir(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-lock-'));
  dirs.push(d);
  return d;
}

describe('InstanceLock', () => {
  it('refuses a second holder at once and names the first; free again after release', () => {
    const dir = tmpDir();
    const first = InstanceLock.acquire(dir, 'gw-a:5060');
    let refused: unknown;
    try {
      InstanceLock.acquire(dir, 'gw-b:5060');
    } catch (err) {
      refused = err;
    }
    expect(refused).toBeInstanceOf(InstanceLockedError);
    const err = refused as InstanceLockedError;
    expect(err.holder).toMatchObject({ pid: process.pid, host: os.hostname(), instanceId: 'gw-a:5060' });
    expect(err.message).toContain('(DATA_DIR) is in use by pid');
    expect(err.message).toContain('instance gw-a:5060');

    first.release();
    first.release(); // twice is harmless
    const second = InstanceLock.acquire(dir, 'gw-b:5060');
    expect(second.holder.instanceId).toBe('gw-b:5060');
    second.release();
  });

  it('creates a missing data directory', () => {
    const dir = path.join(tmpDir(), 'nested', 'data');
    const lock = InstanceLock.acquire(dir, 'x');
    expect(fs.existsSync(path.join(dir, 'gateway.lock.json'))).toBe(true);
    lock.release();
    expect(fs.existsSync(path.join(dir, 'gateway.lock.json'))).toBe(false);
  });

  it('an unreadable holder record still gives a clear refusal', () => {
    const dir = tmpDir();
    const lock = InstanceLock.acquire(dir, 'x');
    fs.writeFileSync(path.join(dir, 'gateway.lock.json'), 'not json');
    expect(() => InstanceLock.acquire(dir, 'y')).toThrow(/in use by another process \(holder unknown\)/);
    lock.release();
  });
});
