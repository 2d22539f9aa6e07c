/**
 * Where to send a request: an explicit host:port (outbound proxy) or the Request-URI's host. RFC 3263 NAPTR/SRV
 * lookups are not done: Telnyx publishes A records for sip.telnyx.com, and operators who need SRV set
 * TELNYX_OUTBOUND_PROXY. Hostnames are resolved with the system resolver (A/AAAA), asking only for the family the
 * listening sockets can reach: an IPv4-only gateway must not pick a AAAA record its UDP socket cannot send to.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { IpFamily } from './listen.ts';
import type { SipEndpoint, SipTransportName } from './message.ts';
import { parseUri, stripBrackets } from '../syntax/uri.ts';

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
    return { transport: defaultTransport, address: await resolveHost(host, family), port: port ?? 5060 };
  }
  const u = parseUri(uri);
  const param = u.params.transport;
  const transport: SipTransportName = param === 'tcp' ? 'tcp' : param === 'udp' ? 'udp' : defaultTransport;
  return { transport, address: await resolveHost(u.host, family), port: u.port ?? 5060 };
}
