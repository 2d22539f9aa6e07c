/**
 * The DNS lookups RFC 3263 needs (NAPTR, SRV, A, AAAA) through node:dns's Resolver, cached.
 *
 * Why a Resolver and not dns.lookup: getaddrinfo() knows no NAPTR or SRV, and DNS_SERVERS must be able to point the
 * gateway at other servers than the system's (operators with a split horizon, and the tests' dnsmasq).
 *
 * Cache rules:
 * - A/AAAA answers are kept for their TTL (the smallest of the set; TTL 0: not kept).
 * - node:dns does not return the TTL of NAPTR and SRV answers, so they are kept for a fixed RECORD_CACHE_MS (60 s).
 *   That bounds how long a changed SRV set goes unnoticed; querying raw DNS messages for the real TTL is not worth
 *   a parser of our own for records that change a few times a year.
 * - "No such name/records" (NXDOMAIN, NODATA) is kept as long, so a domain without NAPTR costs one query a minute,
 *   not one per call.
 * - A failed query (timeout, SERVFAIL, refused) serves the last answer if there is one (RFC 8767 "serve stale") and
 *   otherwise counts as "no records" for ERROR_CACHE_MS, so calls do not each wait out a dead DNS server.
 * - Concurrent queries for one name share one request.
 * - Names found nowhere in DNS fall back to the system's getaddrinfo() (/etc/hosts) unless DNS_SERVERS is set, as
 *   before RFC 3263 support.
 */
import dns from 'node:dns/promises';
import type { NaptrRecord, RecordWithTtl, SrvRecord } from 'node:dns';
import type { Logger } from '../../logger.ts';
import type { IpFamily } from './listen.ts';

export type { NaptrRecord, SrvRecord };

/** The queries we use, as node:dns's Resolver has them (tests pass a fake). */
export interface DnsClient {
  resolveNaptr(name: string): Promise<NaptrRecord[]>;
  resolveSrv(name: string): Promise<SrvRecord[]>;
  resolve4(name: string, opts: { ttl: true }): Promise<RecordWithTtl[]>;
  resolve6(name: string, opts: { ttl: true }): Promise<RecordWithTtl[]>;
}

export const RECORD_CACHE_MS = 60_000;
export const ERROR_CACHE_MS = 5_000;
/** Longest an address answer is kept whatever its TTL says: a day-long TTL must not outlive an SBC move. */
const MAX_ADDRESS_CACHE_MS = 3_600_000;
const MAX_ENTRIES = 1024;
/**
 * Per query: 1 s, tried twice (c-ares doubles the wait on the retry). A local caching resolver answers in
 * milliseconds; a dead one must not hold a call for c-ares' default 5 s x 4.
 */
const RESOLVER_OPTIONS = { timeout: 1000, tries: 2 };

/** Answers that mean "the name has no such records", as opposed to "the query failed". */
const NEGATIVE = new Set(['ENODATA', 'ENOTFOUND']);

/** node:dns's Resolver, pointed at `servers` (`ip`, `ip:port`, `[v6]:port`) when given. */
export function createDnsClient(servers: readonly string[]): DnsClient {
  const resolver = new dns.Resolver(RESOLVER_OPTIONS);
  if (servers.length > 0) resolver.setServers([...servers]);
  return resolver;
}

interface Entry<T> {
  value: T[];
  expiresAt: number;
}

/** A fresh answer and how long it may be kept. */
interface Answer<T> {
  value: T[];
  ttlMs: number;
}

export interface CachedDnsOptions {
  client: DnsClient;
  /** True when DNS_SERVERS replaced the system resolver: no getaddrinfo() fallback then. */
  customServers: boolean;
  logger: Logger;
  now?: () => number;
  /** getaddrinfo(), for names DNS does not know (tests replace it). */
  lookup?: (name: string, family: IpFamily) => Promise<string[]>;
}

export class CachedDns {
  readonly #opts: CachedDnsOptions;
  readonly #now: () => number;
  readonly #cache = new Map<string, Entry<unknown>>();
  readonly #inFlight = new Map<string, Promise<unknown[]>>();

  constructor(opts: CachedDnsOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
  }

  naptr(name: string): Promise<NaptrRecord[]> {
    return this.#query('NAPTR', name, async () => fixed(await this.#opts.client.resolveNaptr(name)));
  }

  srv(name: string): Promise<SrvRecord[]> {
    return this.#query('SRV', name, async () => fixed(await this.#opts.client.resolveSrv(name)));
  }

  /** IPv4 then IPv6 addresses of `name`, only of `family` (0: both). */
  async addresses(name: string, family: IpFamily): Promise<string[]> {
    const [v4, v6] = await Promise.all([
      family === 6 ? [] : this.#query('A', name, async () => withTtl(await this.#opts.client.resolve4(name, TTL))),
      family === 4 ? [] : this.#query('AAAA', name, async () => withTtl(await this.#opts.client.resolve6(name, TTL))),
    ]);
    const found = [...v4, ...v6].map((r) => r.address);
    if (found.length > 0 || this.#opts.customServers) return found;
    return (this.#opts.lookup ?? systemLookup)(name, family).catch(() => []);
  }

  /** Forget every answer (tests; an operator's DNS change is picked up within RECORD_CACHE_MS anyway). */
  clear(): void {
    this.#cache.clear();
  }

  #query<T>(type: string, name: string, ask: () => Promise<Answer<T>>): Promise<T[]> {
    const key = `${type} ${name.toLowerCase()}`;
    const hit = this.#cache.get(key) as Entry<T> | undefined;
    if (hit && hit.expiresAt > this.#now()) return Promise.resolve(hit.value);
    const pending = this.#inFlight.get(key) as Promise<T[]> | undefined;
    if (pending) return pending;
    const p = this.#ask(key, type, name, ask, hit).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, p);
    return p;
  }

  async #ask<T>(key: string, type: string, name: string, ask: () => Promise<Answer<T>>, stale?: Entry<T>) {
    const now = this.#now();
    try {
      const fresh = await ask();
      this.#store(key, { value: fresh.value, expiresAt: now + fresh.ttlMs });
      return fresh.value;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      if (NEGATIVE.has(code)) {
        this.#store(key, { value: [], expiresAt: now + RECORD_CACHE_MS });
        return [];
      }
      this.#opts.logger.warn({ err, type, name, stale: stale !== undefined }, 'DNS query failed');
      const value = stale?.value ?? [];
      this.#store(key, { value, expiresAt: now + ERROR_CACHE_MS });
      return value;
    }
  }

  #store(key: string, entry: Entry<unknown>): void {
    if (entry.expiresAt <= this.#now()) {
      this.#cache.delete(key);
      return;
    }
    this.#cache.delete(key); // re-inserted last: the Map's order is then oldest first
    this.#cache.set(key, entry);
    if (this.#cache.size <= MAX_ENTRIES) return;
    const oldest = this.#cache.keys().next().value;
    if (oldest !== undefined) this.#cache.delete(oldest);
  }
}

const TTL = { ttl: true } as const;

function fixed<T>(value: T[]): Answer<T> {
  return { value, ttlMs: RECORD_CACHE_MS };
}

function withTtl(value: RecordWithTtl[]): Answer<RecordWithTtl> {
  const ttlSec = value.length ? Math.min(...value.map((r) => r.ttl)) : RECORD_CACHE_MS / 1000;
  return { value, ttlMs: Math.min(ttlSec * 1000, MAX_ADDRESS_CACHE_MS) };
}

async function systemLookup(name: string, family: IpFamily): Promise<string[]> {
  const all = await dns.lookup(name, { family, all: true });
  return all.map((a) => a.address);
}
