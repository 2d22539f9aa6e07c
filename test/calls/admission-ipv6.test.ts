/** The PBX allowlist with IPv6 sources, as a dual-stack SIP socket reports them. */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/calls/admission.ts';

const allow = (allowedSources: string[]) => new Admission({ allowedSources, maxConcurrent: 0, maxCallsPerSecond: 0 });

describe('Admission with IPv6 sources', () => {
  it('the default allowlist (127.0.0.0/8, ::1/128) takes IPv6 loopback in any spelling and IPv4-mapped loopback', () => {
    const a = allow(['127.0.0.0/8', '::1/128']);
    for (const ip of ['::1', '0:0:0:0:0:0:0:1', '127.0.0.1', '127.1.2.3', '::ffff:127.0.0.1', '::FFFF:127.0.0.9'])
      expect(a.sourceAllowed(ip), ip).toBe(true);
    for (const ip of ['::2', '2001:db8::1', '::ffff:10.0.0.1', '::', '10.0.0.1'])
      expect(a.sourceAllowed(ip), ip).toBe(false);
  });

  it('matches IPv6 prefixes and refuses IPv6 sources outside them with 403', () => {
    const a = allow(['2001:db8:10::/48']);
    expect(a.admit('2001:db8:10::5')).toEqual({ admitted: true });
    expect(a.admit('2001:db8:10:ffff::1')).toEqual({ admitted: true });
    expect(a.admit('2001:db8:11::1')).toMatchObject({ admitted: false, status: 403, why: 'source_not_allowed' });
  });

  it('matches an IPv4-mapped source against IPv4 entries, never against a different IPv4 network', () => {
    const a = allow(['10.0.0.0/8']);
    expect(a.admit('::ffff:10.1.2.3')).toEqual({ admitted: true });
    expect(a.admit('::ffff:192.0.2.1')).toMatchObject({ admitted: false, why: 'source_not_allowed' });
    // An IPv6 entry does not let IPv4 peers in.
    expect(allow(['::1/128']).sourceAllowed('127.0.0.1')).toBe(false);
  });
});
