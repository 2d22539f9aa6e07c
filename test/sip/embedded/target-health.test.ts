/** The shared health table of RFC 3263 targets: INVITE holds, ds_ping-style probe counting, what /healthz shows. */
import { describe, expect, it } from 'vitest';
import type { SipTarget } from '../../../src/sip/embedded/rfc3263.ts';
import { TargetHealth } from '../../../src/sip/embedded/target-health.ts';

const sbc1: SipTarget = { transport: 'udp', address: '192.0.2.1', port: 5060, name: 'sbc1.example.test' };
const sbc2: SipTarget = { transport: 'udp', address: '192.0.2.2', port: 5060, name: 'sbc2.example.test' };

function setup(failuresToDown = 3) {
  let t = 1_700_000_000_000;
  const changes: string[] = [];
  const health = new TargetHealth({
    failuresToDown,
    now: () => t,
    onChange: (target, up, why) => changes.push(`${target.address} ${up ? 'up' : 'down'} (${why})`),
  });
  return { health, changes, advance: (ms: number) => void (t += ms) };
}

describe('TargetHealth', () => {
  it('counts a target never seen failing as up', () => {
    const { health } = setup();
    expect(health.isUp(sbc1)).toBe(true);
    health.seen(sbc1);
    expect(health.snapshot()).toEqual([
      { target: 'udp:192.0.2.1:5060', name: 'sbc1.example.test', up: true, probeFailures: 0 },
    ]);
  });

  it('holds a target down after a failed INVITE until the hold expires', () => {
    const { health, changes, advance } = setup();
    health.hold(sbc1, 30_000, 'timeout');
    expect(health.isUp(sbc1)).toBe(false);
    expect(health.isUp(sbc2)).toBe(true);
    expect(health.snapshot()[0]).toMatchObject({ up: false, down: 'invite', downUntil: '2023-11-14T22:13:50.000Z' });
    health.hold(sbc1, 30_000, 'timeout'); // already down: no second "down" line
    advance(30_000);
    expect(health.isUp(sbc1)).toBe(true);
    expect(changes).toEqual(['192.0.2.1 down (timeout)']);
  });

  it('takes a target out after N failed probes in a row, and puts it back on the first answer', () => {
    const { health, changes } = setup(3);
    health.probed(sbc1, false, 'timeout');
    health.probed(sbc1, false, 'timeout');
    expect(health.isUp(sbc1)).toBe(true);
    health.probed(sbc1, true, '200'); // an answer resets the count
    health.probed(sbc1, false, 'timeout');
    health.probed(sbc1, false, '503');
    expect(health.isUp(sbc1)).toBe(true);
    health.probed(sbc1, false, 'timeout');
    expect(health.isUp(sbc1)).toBe(false);
    expect(health.snapshot()[0]).toMatchObject({
      up: false,
      down: 'probe',
      probeFailures: 3,
      lastProbe: { result: 'timeout' },
    });
    health.probed(sbc1, true, '404');
    expect(health.isUp(sbc1)).toBe(true);
    expect(changes).toEqual(['192.0.2.1 down (3 probes failed)', '192.0.2.1 up (probe answered)']);
  });

  it('lets an answered probe end an INVITE hold early', () => {
    const { health } = setup();
    health.hold(sbc1, 30_000, 'timeout');
    health.probed(sbc1, true, '200');
    expect(health.isUp(sbc1)).toBe(true);
  });

  it('forgets targets nobody resolved for ten minutes, unless they are down', () => {
    const { health, advance } = setup(1);
    health.seen(sbc1);
    health.probed(sbc2, false, 'timeout');
    advance(10 * 60_000 + 1);
    expect(health.snapshot().map((s) => s.target)).toEqual(['udp:192.0.2.2:5060']);
  });
});
