/** RFC 3263 next-hop resolution and RFC 2782 SRV ordering, against an in-memory DNS. */
import { describe, expect, it } from 'vitest';
import { orderSrv, resolveTargets, targetKey } from '../../../src/sip/embedded/rfc3263.ts';
import { cachedDns, FakeDns, type FakeZone, sequence } from './fake-dns.ts';

const srv = (name: string, port: number, priority: number, weight: number) => ({ name, port, priority, weight });

/** Telnyx-like: NAPTR for UDP and TCP, two SBCs each, the A record only the primary. */
const TELNYX: FakeZone = {
  naptr: {
    'sip.example.test': [
      { flags: 's', service: 'SIP+D2T', replacement: '_sip._tcp.sip.example.test', order: 20, preference: 10 },
      { flags: 'S', service: 'SIP+D2U', replacement: '_sip._udp.sip.example.test', order: 10, preference: 10 },
      { flags: 's', service: 'SIPS+D2T', replacement: '_sips._tcp.sip.example.test', order: 30, preference: 10 },
    ],
  },
  srv: {
    '_sip._udp.sip.example.test': [srv('sbc2.example.test', 5070, 20, 0), srv('sbc1.example.test', 5060, 10, 0)],
    '_sip._tcp.sip.example.test': [srv('sbc1.example.test', 5060, 10, 0), srv('sbc2.example.test', 5060, 20, 0)],
    '_sips._tcp.sip.example.test': [srv('sbc1.example.test', 5061, 10, 0)],
  },
  a: { 'sbc1.example.test': ['192.0.2.1'], 'sbc2.example.test': ['192.0.2.2'], 'sip.example.test': ['192.0.2.1'] },
  aaaa: { 'sbc1.example.test': ['2001:db8::1'] },
};

async function keys(uri: string, zone: FakeZone, transports: Array<'udp' | 'tcp' | 'tls'>, family: 0 | 4 | 6 = 4) {
  const targets = await resolveTargets(uri, cachedDns(new FakeDns(zone)), { transports, family });
  return targets.map(targetKey);
}

describe('orderSrv (RFC 2782)', () => {
  it('puts lower priorities first whatever the weights', () => {
    const ordered = orderSrv([srv('c', 1, 30, 100), srv('a', 1, 10, 0), srv('b', 1, 20, 50)], () => 0.99);
    expect(ordered.map((r) => r.name)).toEqual(['a', 'b', 'c']);
  });

  it('draws within a priority by running weight sums, 0..sum inclusive', () => {
    const records = [srv('heavy', 1, 10, 60), srv('light', 1, 10, 10)];
    // floor(r * 71): 0..60 falls on "heavy" (running sum 60), 61..70 on "light" (running sum 70).
    expect(orderSrv(records, sequence(60 / 71)).map((r) => r.name)).toEqual(['heavy', 'light']);
    expect(orderSrv(records, sequence(61 / 71)).map((r) => r.name)).toEqual(['light', 'heavy']);
    expect(orderSrv(records, sequence(0.999)).map((r) => r.name)).toEqual(['light', 'heavy']);
  });

  it('gives zero-weight records a place first in the draw, picked only when the draw is 0', () => {
    const records = [srv('weighted', 1, 10, 50), srv('zero', 1, 10, 0)];
    expect(orderSrv(records, sequence(0)).map((r) => r.name)).toEqual(['zero', 'weighted']);
    expect(orderSrv(records, sequence(0.5)).map((r) => r.name)).toEqual(['weighted', 'zero']);
  });

  it('spreads draws in proportion to the weights', () => {
    let seed = 7;
    const lcg = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const records = [srv('a', 1, 10, 75), srv('b', 1, 10, 25)];
    let first = 0;
    for (let i = 0; i < 4000; i++) if (orderSrv(records, lcg)[0]?.name === 'a') first++;
    expect(first / 4000).toBeGreaterThan(0.7);
    expect(first / 4000).toBeLessThan(0.8);
  });
});

describe('resolveTargets (RFC 3263 §4)', () => {
  it('follows the NAPTR record of the wanted transport to its SRV targets, in priority order', async () => {
    expect(await keys('sip:+4930123@sip.example.test', TELNYX, ['udp'])).toEqual([
      'udp:192.0.2.1:5060',
      'udp:192.0.2.2:5070',
    ]);
    expect(await keys('sip:+4930123@sip.example.test', TELNYX, ['tcp'])).toEqual([
      'tcp:192.0.2.1:5060',
      'tcp:192.0.2.2:5060',
    ]);
  });

  it('with several transports allowed, keeps NAPTR order and each target the transport its record chose', async () => {
    expect(await keys('sip:x@sip.example.test', TELNYX, ['tcp', 'udp'])).toEqual([
      'udp:192.0.2.1:5060',
      'udp:192.0.2.2:5070',
      'tcp:192.0.2.1:5060',
      'tcp:192.0.2.2:5060',
    ]);
  });

  it('a sips: URI uses SIPS+D2T only (TLS, 5061)', async () => {
    expect(await keys('sips:x@sip.example.test', TELNYX, ['udp'])).toEqual(['tls:192.0.2.1:5061']);
  });

  it('lists IPv4 then IPv6 addresses of an SRV target when the sockets reach both, only one family otherwise', async () => {
    const zone: FakeZone = { ...TELNYX, naptr: {} };
    expect(await keys('sip:x@sip.example.test;transport=tcp', zone, ['udp'], 0)).toEqual([
      'tcp:192.0.2.1:5060',
      'tcp:[2001:db8::1]:5060',
      'tcp:192.0.2.2:5060',
    ]);
    expect(await keys('sip:x@sip.example.test;transport=tcp', zone, ['udp'], 6)).toEqual(['tcp:[2001:db8::1]:5060']);
  });

  it('without NAPTR queries the SRV name of the transport; without SRV the A record on the default port', async () => {
    const dns = new FakeDns({ ...TELNYX, naptr: {} });
    const targets = await resolveTargets('sip:x@sip.example.test', cachedDns(dns), { transports: ['udp'], family: 4 });
    expect(targets.map(targetKey)).toEqual(['udp:192.0.2.1:5060', 'udp:192.0.2.2:5070']);
    expect(dns.queries).toContain('SRV _sip._udp.sip.example.test');
    const bare: FakeZone = { a: { 'plain.example.test': ['192.0.2.9'] } };
    expect(await keys('sip:x@plain.example.test', bare, ['tcp'])).toEqual(['tcp:192.0.2.9:5060']);
    expect(await keys('sip:x@plain.example.test', bare, ['tls'])).toEqual(['tls:192.0.2.9:5061']);
  });

  it('skips NAPTR and SRV for an explicit port or an IP address (§4.2)', async () => {
    const dns = new FakeDns(TELNYX);
    const opts = { transports: ['udp'] as const, family: 4 as const };
    const withPort = await resolveTargets('sip:x@sip.example.test:5080', cachedDns(dns), opts);
    expect(withPort.map(targetKey)).toEqual(['udp:192.0.2.1:5080']);
    expect(dns.queries.filter((q) => /^(NAPTR|SRV)/.test(q))).toEqual([]);
    const numeric = await resolveTargets('sip:x@[2001:db8::7]', cachedDns(dns), opts);
    expect(numeric).toEqual([{ transport: 'udp', address: '2001:db8::7', port: 5060, name: '2001:db8::7' }]);
  });

  it('treats an SRV target "." as no service (RFC 2782) instead of falling back to the A record', async () => {
    const zone: FakeZone = {
      srv: { '_sip._udp.none.example.test': [srv('.', 0, 0, 0)] },
      a: { 'none.example.test': ['192.0.2.50'] },
    };
    expect(await keys('sip:x@none.example.test', zone, ['udp'])).toEqual([]);
  });

  it('falls back to SRV when NAPTR lists only transports we may not use', async () => {
    const zone: FakeZone = {
      ...TELNYX,
      naptr: {
        'sip.example.test': [{ flags: 's', service: 'SIP+D2T', replacement: '_sip._tcp.x', order: 1, preference: 1 }],
      },
    };
    expect(await keys('sip:x@sip.example.test', zone, ['udp'])).toEqual(['udp:192.0.2.1:5060', 'udp:192.0.2.2:5070']);
  });

  it('drops a target named twice (same transport, address and port)', async () => {
    const zone: FakeZone = {
      srv: { '_sip._udp.dup.example.test': [srv('a.example.test', 5060, 10, 0), srv('b.example.test', 5060, 20, 0)] },
      a: { 'a.example.test': ['192.0.2.1'], 'b.example.test': ['192.0.2.1'] },
    };
    expect(await keys('sip:x@dup.example.test', zone, ['udp'])).toEqual(['udp:192.0.2.1:5060']);
  });

  it('refuses URIs that are not sip: or sips:', async () => {
    await expect(keys('tel:+4930123', TELNYX, ['udp'])).rejects.toThrow(/not a SIP URI/);
  });
});
