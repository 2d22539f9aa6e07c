/**
 * RFC 3263 §4: from a SIP URI to the ordered list of next hops (transport, address, port) to try.
 *
 * - A URI with an IP address or an explicit port skips NAPTR and SRV (§4.2): its host is looked up (A/AAAA) as it is.
 * - Otherwise NAPTR picks the SRV names by order and preference, for the transports we may use (SIP+D2U → udp,
 *   SIP+D2T → tcp, SIPS+D2T → tls); each target keeps the transport its record chose.
 * - Without usable NAPTR records: SRV `_sip._udp`, `_sip._tcp` or `_sips._tcp` for each transport we may use, in
 *   our order. Without SRV records: the host's A/AAAA on the transport's default port (5060, TLS 5061).
 * - SRV targets are ordered by priority, then by RFC 2782's weighted random draw, afresh for every call, so the
 *   weights spread calls over equal-priority SBCs. A target named "." means "no service here" (RFC 2782).
 *
 * Which transports we may use: the URI's `transport` parameter, `tls` for a sips: URI, else the caller's list
 * (TELNYX_SIP_TRANSPORT names one: an operator who opened UDP 5060 in a firewall must not find the gateway on TCP
 * because Telnyx's NAPTR happens to list TCP first).
 */
import net from 'node:net';
import { parseUri, stripBrackets } from '../syntax/uri.ts';
import type { CachedDns, NaptrRecord } from './dns.ts';
import type { IpFamily } from './listen.ts';
import type { SipEndpoint, SipTransportName } from './message.ts';

/** One next hop: where to send and which transport the DNS records chose. */
export interface SipTarget extends SipEndpoint {
  /**
   * The name the address came from (the SRV target, or the URI's host), for logs. Not the TLS identity: a
   * certificate must show the URI's domain (RFC 5922 §4), which tls.ts reads from the request.
   */
  name: string;
}

type RecordTransport = 'udp' | 'tcp' | 'tls';
const NAPTR_SERVICES: Readonly<Record<string, RecordTransport>> = {
  'SIP+D2U': 'udp',
  'SIP+D2T': 'tcp',
  'SIPS+D2T': 'tls',
};
const SRV_PREFIX: Readonly<Record<RecordTransport, string>> = { udp: '_sip._udp', tcp: '_sip._tcp', tls: '_sips._tcp' };
const DEFAULT_PORT: Readonly<Record<RecordTransport, number>> = { udp: 5060, tcp: 5060, tls: 5061 };

export interface ResolveOptions {
  /** Transports we may use, most wanted first; the URI's transport parameter overrides them. */
  transports: readonly SipTransportName[];
  /** Address family the sockets reach (0: both; IPv4 addresses are listed first). */
  family: IpFamily;
  /** Random source of the SRV weight draw, [0, 1) (tests inject one). */
  random?: () => number;
}

/** `udp:192.0.2.1:5060`, `tcp:[2001:db8::1]:5060`: one target's identity in logs, health and metrics. */
export function targetKey(t: SipEndpoint): string {
  const host = t.address.includes(':') ? `[${t.address}]` : t.address;
  return `${t.transport}:${host}:${t.port}`;
}

/** The targets of `uri`, in the order to try them; empty when DNS knows none. Throws on a URI it cannot use. */
export async function resolveTargets(uri: string, dns: CachedDns, opts: ResolveOptions): Promise<SipTarget[]> {
  const u = parseUri(uri);
  if (u.scheme !== 'sip' && u.scheme !== 'sips') throw new Error(`not a SIP URI: ${uri}`);
  const domain = stripBrackets(u.host);
  const param = u.params.transport?.toLowerCase();
  const wanted: RecordTransport[] =
    u.scheme === 'sips'
      ? ['tls']
      : param && param in DEFAULT_PORT
        ? [param as RecordTransport]
        : opts.transports.filter((t): t is RecordTransport => t in DEFAULT_PORT);
  const first = wanted[0];
  if (!first) throw new Error(`no usable transport for ${uri}`);
  const lookup = new Lookup(dns, opts, domain);
  if (net.isIP(domain)) return [target(first, domain, u.port ?? DEFAULT_PORT[first], domain)];
  if (u.port !== undefined) return lookup.addressTargets(domain, first, u.port);
  const found =
    (await lookup.naptrTargets(wanted)) ??
    (await lookup.srvTargets(wanted)) ??
    (await lookup.addressTargets(domain, first, DEFAULT_PORT[first]));
  return dedupe(found);
}

/** One resolution's steps, sharing the DNS cache, the options and the URI's domain. */
class Lookup {
  readonly #dns: CachedDns;
  readonly #opts: ResolveOptions;
  readonly #domain: string;

  constructor(dns: CachedDns, opts: ResolveOptions, domain: string) {
    this.#dns = dns;
    this.#opts = opts;
    this.#domain = domain;
  }

  async addressTargets(name: string, transport: RecordTransport, port: number): Promise<SipTarget[]> {
    const addresses = await this.#dns.addresses(name, this.#opts.family);
    return addresses.map((a) => target(transport, a, port, name));
  }

  /** Undefined when the domain has no NAPTR record for a transport we may use (§4.1: then SRV). */
  async naptrTargets(wanted: readonly RecordTransport[]): Promise<SipTarget[] | undefined> {
    const usable = (await this.#dns.naptr(this.#domain))
      .filter((r) => {
        const transport = naptrTransport(r);
        return r.flags.toLowerCase() === 's' && r.replacement !== '' && transport && wanted.includes(transport);
      })
      .sort((a, b) => a.order - b.order || a.preference - b.preference);
    if (usable.length === 0) return undefined;
    const lists = await Promise.all(usable.map((r) => this.#srvOf(r.replacement, naptrTransport(r) ?? 'udp')));
    const found = lists.flatMap((l) => l ?? []);
    return found.length > 0 ? found : undefined;
  }

  /** Undefined when no SRV record exists for any transport we may use (§4.1: then A/AAAA). */
  async srvTargets(wanted: readonly RecordTransport[]): Promise<SipTarget[] | undefined> {
    const lists = await Promise.all(wanted.map((t) => this.#srvOf(`${SRV_PREFIX[t]}.${this.#domain}`, t)));
    if (lists.every((l) => l === undefined)) return undefined;
    return lists.flatMap((l) => l ?? []);
  }

  /** Undefined without SRV records; [] when they say "no service" (target ".") or name hosts without addresses. */
  async #srvOf(name: string, transport: RecordTransport): Promise<SipTarget[] | undefined> {
    const records = await this.#dns.srv(name);
    if (records.length === 0) return undefined;
    const served = orderSrv(
      records.filter((r) => r.name !== '' && r.name !== '.'),
      this.#opts.random,
    );
    const lists = await Promise.all(served.map((r) => this.addressTargets(r.name, transport, r.port)));
    return lists.flat();
  }
}

function target(transport: RecordTransport, address: string, port: number, name: string): SipTarget {
  return { transport, address, port, name };
}

function naptrTransport(r: NaptrRecord): RecordTransport | undefined {
  return NAPTR_SERVICES[r.service.toUpperCase()];
}

/**
 * RFC 2782's order: ascending priority; within one priority, repeatedly draw a number from 0 to the sum of the
 * remaining weights (inclusive) and take the first record whose running sum reaches it. Zero-weight records go first
 * in the running sum, so they are picked only rarely, as the RFC wants.
 */
export function orderSrv<T extends { priority: number; weight: number }>(
  records: readonly T[],
  random: () => number = Math.random,
): T[] {
  const out: T[] = [];
  const priorities = [...new Set(records.map((r) => r.priority))].sort((a, b) => a - b);
  for (const priority of priorities) {
    const group = records
      .filter((r) => r.priority === priority)
      .sort((a, b) => Number(a.weight !== 0) - Number(b.weight !== 0));
    while (group.length > 0) {
      const total = group.reduce((sum, r) => sum + r.weight, 0);
      const draw = Math.floor(random() * (total + 1));
      let running = 0;
      const index = group.findIndex((r) => {
        running += r.weight;
        return running >= draw;
      });
      out.push(...group.splice(Math.max(index, 0), 1));
    }
  }
  return out;
}

function dedupe(targets: SipTarget[]): SipTarget[] {
  const seen = new Set<string>();
  return targets.filter((t) => {
    const key = targetKey(t);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
