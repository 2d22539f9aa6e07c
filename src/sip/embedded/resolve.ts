/**
 * Where to send a request when there is one next hop: an explicit host:port (outbound proxy) or, in a dialog, the
 * remote target's host (it names the SBC that answered). Out-of-dialog INVITEs without a proxy go through RFC 3263
 * instead (rfc3263.ts: NAPTR, SRV, several targets). Hostnames here are resolved with the system resolver (A/AAAA),
 * asking only for the family the listening sockets can reach: an IPv4-only gateway must not pick a AAAA record its
 * UDP socket cannot send to.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { IpFamily } from './listen.ts';
import type { SipEndpoint, SipTransportName } from './message.ts';
import { parseUri, stripBrackets } from '../syntax/uri.ts';
import { proxyServerName } from './tls.ts';

/** `host`, `host:port`, `[v6]` or `[v6]:port`. A bare IPv6 address is refused: its last group reads as a port. */
export function parseHostPort(text: string): { host: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:[\]]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`bad host:port "${text}" (IPv6 addresses go in brackets: [2001:db8::1]:5060)`);
  return { host: m[1] ?? '', port: m[2] ? Number(m[2]) : undefined };
}

/** An IP literal (brackets removed) as it is, else a lookup limited to `family` (0: either). */
export async function resolveHost(host: string, family: IpFamily = 0): Promise<string> {
  const bare = stripBrackets(host);
  if (net.isIP(bare)) return bare;
  const { address } = await dns.lookup(bare, { family });
  return address;
}

/** Destination for a request to `uri`, optionally forced through `proxy` (host:port). */
export async function resolveDestination(
  uri: string,
  proxy: string | undefined,
  defaultTransport: SipTransportName,
  family: IpFamily = 0,
): Promise<SipEndpoint> {
  if (proxy) {
    const { host, port } = parseHostPort(proxy);
    // A sips: URI means TLS to the next hop (RFC 3261 §26.2.2), the proxy included.
    const transport = /^sips:/i.test(uri) ? 'tls' : defaultTransport;
    const dest: SipEndpoint = {
      transport,
      address: await resolveHost(host, family),
      port: port ?? defaultPort(transport),
    };
    // We connect to the proxy, so its certificate must name the proxy; configured by IP, the Request-URI's domain.
    if (transport === 'tls') dest.serverName = proxyServerName(host);
    return dest;
  }
  const u = parseUri(uri);
  const param = u.params.transport?.toLowerCase();
  const transport: SipTransportName =
    u.scheme === 'sips' ? 'tls' : param === 'tcp' || param === 'udp' || param === 'tls' ? param : defaultTransport;
  return { transport, address: await resolveHost(u.host, family), port: u.port ?? defaultPort(transport) };
}

/** RFC 3261 §19.1.2: 5061 for TLS, 5060 otherwise. */
function defaultPort(transport: SipTransportName): number {
  return transport === 'tls' ? 5061 : 5060;
}
