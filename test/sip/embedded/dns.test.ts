/** The DNS cache under RFC 3263 resolution: TTLs, fixed SRV/NAPTR times, negative answers, serve-stale, sharing. */
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CachedDns, ERROR_CACHE_MS, RECORD_CACHE_MS } from '../../../src/sip/embedded/dns.ts';
import { cachedDns, FakeDns } from './fake-dns.ts';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const srv = [{ name: 'sbc1.example.test', port: 5060, priority: 10, weight: 0 }];

describe('CachedDns', () => {
  it('keeps A answers for their smallest TTL', async () => {
    const c = clock();
    const dns = new FakeDns({
      a: {
        'sbc.example.test': [
          { address: '192.0.2.1', ttl: 30 },
          { address: '192.0.2.2', ttl: 10 },
        ],
      },
    });
    const cache = cachedDns(dns, c.now);
    expect(await cache.addresses('sbc.example.test', 4)).toEqual(['192.0.2.1', '192.0.2.2']);
    c.advance(9_999);
    await cache.addresses('sbc.example.test', 4);
    expect(dns.queries).toEqual(['A sbc.example.test']);
    c.advance(2);
    await cache.addresses('SBC.example.test', 4); // names compare case-insensitively
    expect(dns.queries).toEqual(['A sbc.example.test', 'A SBC.example.test']);
  });

  it('does not keep an answer with TTL 0', async () => {
    const dns = new FakeDns({ a: { 'zero.example.test': [{ address: '192.0.2.1', ttl: 0 }] } });
    const cache = cachedDns(dns);
    await cache.addresses('zero.example.test', 4);
    await cache.addresses('zero.example.test', 4);
    expect(dns.queries).toHaveLength(2);
  });

  it('keeps SRV and NAPTR answers, and "no such records", for the fixed RECORD_CACHE_MS', async () => {
    const c = clock();
    const dns = new FakeDns({ srv: { '_sip._udp.example.test': srv } });
    const cache = cachedDns(dns, c.now);
    expect(await cache.srv('_sip._udp.example.test')).toEqual(srv);
    expect(await cache.naptr('example.test')).toEqual([]);
    c.advance(RECORD_CACHE_MS - 1);
    await cache.srv('_sip._udp.example.test');
    await cache.naptr('example.test');
    expect(dns.queries).toEqual(['SRV _sip._udp.example.test', 'NAPTR example.test']);
    c.advance(1);
    await cache.srv('_sip._udp.example.test');
    await cache.naptr('example.test');
    expect(dns.queries).toHaveLength(4);
  });

  it('serves the last answer when a refresh fails, and retries only after ERROR_CACHE_MS', async () => {
    const c = clock();
    const dns = new FakeDns({ srv: { '_sip._udp.example.test': srv } });
    const cache = cachedDns(dns, c.now);
    await cache.srv('_sip._udp.example.test');
    c.advance(RECORD_CACHE_MS);
    dns.zone = { failing: { '_sip._udp.example.test': 'ETIMEOUT' } };
    expect(await cache.srv('_sip._udp.example.test')).toEqual(srv);
    c.advance(ERROR_CACHE_MS - 1);
    expect(await cache.srv('_sip._udp.example.test')).toEqual(srv);
    expect(dns.queries).toHaveLength(2);
    c.advance(1);
    expect(await cache.srv('_sip._udp.example.test')).toEqual(srv);
    expect(dns.queries).toHaveLength(3);
  });

  it('without an earlier answer, a failed query counts as no records (briefly)', async () => {
    const c = clock();
    const dns = new FakeDns({ failing: { 'example.test': 'ESERVFAIL' } });
    const cache = cachedDns(dns, c.now);
    expect(await cache.naptr('example.test')).toEqual([]);
    await cache.naptr('example.test');
    expect(dns.queries).toHaveLength(1);
    c.advance(ERROR_CACHE_MS);
    await cache.naptr('example.test');
    expect(dns.queries).toHaveLength(2);
  });

  it('shares one query between concurrent lookups of a name', async () => {
    const dns = new FakeDns({ a: { 'sbc.example.test': ['192.0.2.1'] } });
    const cache = cachedDns(dns);
    const all = await Promise.all([1, 2, 3].map(() => cache.addresses('sbc.example.test', 4)));
    expect(all).toEqual([['192.0.2.1'], ['192.0.2.1'], ['192.0.2.1']]);
    expect(dns.queries).toEqual(['A sbc.example.test']);
  });

  it('asks getaddrinfo (/etc/hosts) for names DNS does not know, unless DNS_SERVERS replaced the resolver', async () => {
    const dns = new FakeDns({});
    const asked: string[] = [];
    const lookup = async (name: string): Promise<string[]> => {
      asked.push(name);
      return ['127.0.0.9'];
    };
    const logger = pino({ level: 'silent' });
    const system = new CachedDns({ client: dns, customServers: false, logger, lookup });
    expect(await system.addresses('pbx.local', 4)).toEqual(['127.0.0.9']);
    const custom = new CachedDns({ client: dns, customServers: true, logger, lookup });
    expect(await custom.addresses('pbx.local', 4)).toEqual([]);
    expect(asked).toEqual(['pbx.local']);
  });
});
