/** An in-memory DnsClient for the RFC 3263 tests: records by name, every query logged. */
import type { NaptrRecord, RecordWithTtl, SrvRecord } from 'node:dns';
import { pino } from 'pino';
import { CachedDns, type DnsClient } from '../../../src/sip/embedded/dns.ts';

export interface FakeZone {
  naptr?: Record<string, Array<Omit<NaptrRecord, 'regexp'> & { regexp?: string }>>;
  srv?: Record<string, SrvRecord[]>;
  a?: Record<string, string[] | RecordWithTtl[]>;
  aaaa?: Record<string, string[]>;
  /** Names whose queries fail with this code (ETIMEOUT, ESERVFAIL, ...). */
  failing?: Record<string, string>;
}

export class FakeDns implements DnsClient {
  zone: FakeZone;
  readonly queries: string[] = [];

  constructor(zone: FakeZone) {
    this.zone = zone;
  }

  async resolveNaptr(name: string): Promise<NaptrRecord[]> {
    return this.#answer(
      'NAPTR',
      name,
      this.zone.naptr?.[name]?.map((r) => ({ regexp: '', ...r })),
    );
  }

  async resolveSrv(name: string): Promise<SrvRecord[]> {
    return this.#answer('SRV', name, this.zone.srv?.[name]);
  }

  async resolve4(name: string): Promise<RecordWithTtl[]> {
    return this.#answer('A', name, this.zone.a?.[name]?.map(withTtl));
  }

  async resolve6(name: string): Promise<RecordWithTtl[]> {
    return this.#answer('AAAA', name, this.zone.aaaa?.[name]?.map(withTtl));
  }

  #answer<T>(type: string, name: string, records: T[] | undefined): T[] {
    this.queries.push(`${type} ${name}`);
    const failing = this.zone.failing?.[name];
    if (failing) throw Object.assign(new Error(`${type} ${name}: ${failing}`), { code: failing });
    if (!records?.length) throw Object.assign(new Error(`${type} ${name}: ENODATA`), { code: 'ENODATA' });
    return records;
  }
}

function withTtl(r: string | RecordWithTtl): RecordWithTtl {
  return typeof r === 'string' ? { address: r, ttl: 300 } : r;
}

/** A CachedDns over `client` that never falls back to getaddrinfo (as with DNS_SERVERS set). */
export function cachedDns(client: DnsClient, now?: () => number): CachedDns {
  return new CachedDns({ client, customServers: true, logger: pino({ level: 'silent' }), now });
}

/** A random source that plays back `values` in turn (then repeats the last). */
export function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[Math.min(i++, values.length - 1)] ?? 0;
}
