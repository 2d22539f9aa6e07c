/**
 * Where to send a request: an explicit host:port (outbound proxy) or the Request-URI's host. RFC 3263 NAPTR/SRV
 * lookups are not done: Telnyx publishes A records for sip.telnyx.com, and operators who need SRV set
 * TELNYX_OUTBOUND_PROXY. Hostnames are resolved with the system resolver (A/AAAA).
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import type { SipEndpoint, SipTransportName } from './message.ts';
import { parseUri, stripBrackets } from '../syntax/uri.ts';

export function parseHostPort(text: string): { host: string; port?: number } {
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(text) ?? /^([^:]+)(?::(\d+))?$/.exec(text);
  if (!m) throw new Error(`bad host:port "${text}"`);
  return { host: m[1], port: m[2] ? Number(m[2]) : undefined };
}

export async function resolveHost(host: string): Promise<string> {
  const bare = stripBrackets(host);
  if (net.isIP(bare)) return bare;
  const { address } = await dns.lookup(bare);
  return address;
}

/** Destination for a request to `uri`, optionally forced through `proxy` (host:port). */
export async function resolveDestination(
  uri: string,
  proxy: string | undefined,
  defaultTransport: SipTransportName,
): Promise<SipEndpoint> {
  if (proxy) {
    const { host, port } = parseHostPort(proxy);
    return { transport: defaultTransport, address: await resolveHost(host), port: port ?? 5060 };
  }
  const u = parseUri(uri);
  const param = u.params.transport;
  const transport: SipTransportName = param === 'tcp' ? 'tcp' : param === 'udp' ? 'udp' : defaultTransport;
  return { transport, address: await resolveHost(u.host), port: u.port ?? 5060 };
}
