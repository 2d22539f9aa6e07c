import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/calls/admission.ts';

describe('Admission', () => {
  it('allows only configured sources (IPv4, IPv6, IPv4-mapped)', () => {
    const a = new Admission({
      allowedSources: ['10.0.0.0/8', '2001:db8::/32', '192.168.1.5'],
      maxConcurrent: 0,
      maxCallsPerSecond: 0,
    });
    expect(a.admit('10.1.2.3')).toEqual({ admitted: true });
    expect(a.admit('::ffff:10.9.9.9')).toEqual({ admitted: true });
    expect(a.admit('2001:db8::1')).toEqual({ admitted: true });
    expect(a.admit('192.168.1.5')).toEqual({ admitted: true });
    expect(a.admit('192.168.1.6')).toMatchObject({ admitted: false, status: 403, why: 'source_not_allowed' });
  });

  it('limits concurrent calls with 503 and Retry-After, and frees slots on release', () => {
    const a = new Admission({ allowedSources: ['127.0.0.0/8'], maxConcurrent: 2, maxCallsPerSecond: 0 });
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.admit('127.0.0.1')).toMatchObject({ admitted: false, status: 503, why: 'concurrency', retryAfterSec: 5 });
    a.release('127.0.0.1');
    expect(a.admit('127.0.0.1').admitted).toBe(true);
    expect(a.activeCalls).toBe(2);
  });

  it('limits calls per second over a sliding window', () => {
    const a = new Admission({ allowedSources: ['127.0.0.0/8'], maxConcurrent: 0, maxCallsPerSecond: 3 });
    const t = 1_000_000;
    for (let i = 0; i < 3; i++) expect(a.admit('127.0.0.1', t + i).admitted).toBe(true);
    expect(a.admit('127.0.0.1', t + 500)).toMatchObject({ admitted: false, why: 'rate', status: 503 });
    expect(a.admit('127.0.0.1', t + 1001).admitted).toBe(true);
  });

  it('applies per-source limits without affecting other sources', () => {
    const a = new Admission({
      allowedSources: ['10.0.0.0/8'],
      maxConcurrent: 10,
      maxCallsPerSecond: 0,
      maxConcurrentPerSource: 1,
      maxCallsPerSecondPerSource: 0,
    });
    expect(a.admit('10.0.0.1').admitted).toBe(true);
    expect(a.admit('10.0.0.1')).toMatchObject({ admitted: false, why: 'concurrency' });
    expect(a.admit('10.0.0.2').admitted).toBe(true);
    a.release('10.0.0.1');
    expect(a.admit('10.0.0.1').admitted).toBe(true);
    const r = new Admission({
      allowedSources: ['10.0.0.0/8'],
      maxConcurrent: 0,
      maxCallsPerSecond: 0,
      maxCallsPerSecondPerSource: 2,
    });
    expect(r.admit('10.0.0.1', 5000).admitted).toBe(true);
    expect(r.admit('10.0.0.1', 5001).admitted).toBe(true);
    expect(r.admit('10.0.0.1', 5002)).toMatchObject({ admitted: false, why: 'rate' });
    expect(r.admit('10.0.0.2', 5003).admitted).toBe(true);
  });

  it('refuses everything while draining', () => {
    const a = new Admission({ allowedSources: ['127.0.0.0/8'], maxConcurrent: 0, maxCallsPerSecond: 0 });
    a.startDraining();
    expect(a.admit('127.0.0.1')).toMatchObject({ admitted: false, status: 503, why: 'draining' });
  });
});
