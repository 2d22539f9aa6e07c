/**
 * SIP_PUBLIC_ADDRESS: the address the gateway writes in its Via and Contact. A dual-stack gateway (SIP_HOST=::)
 * needs one per family, since an IPv4-only PBX cannot follow an IPv6 Contact nor the reverse: the setting takes one
 * address or hostname (written toward every peer), or an IPv4 and an IPv6 address separated by a comma (each written
 * toward peers of its family). Unset, it is derived from SIP_HOST and this machine's interfaces.
 */
import net from 'node:net';
import os from 'node:os';

export interface PublicAddresses {
  /** Written toward IPv4 peers, and toward every peer when publicAddress6 is unset. */
  publicAddress: string;
  /** Written toward IPv6 peers. */
  publicAddress6?: string;
}

const HOSTNAME = /^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** The entries of the setting, IPv6 brackets removed (they are put back where a URI needs them). */
function entries(text: string): string[] {
  return text
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)
    .map((e) => (e.startsWith('[') && e.endsWith(']') ? e.slice(1, -1) : e));
}

/** Why `val` is not a valid SIP_PUBLIC_ADDRESS, or undefined when it is (empty means "derive it"). */
export function publicAddressProblem(val: unknown): string | undefined {
  if (typeof val !== 'string') return 'must be text';
  const list = entries(val);
  if (list.length > 2) return 'at most two addresses: one IPv4 and one IPv6';
  for (const e of list) {
    if (!net.isIP(e) && (e.includes(':') || !HOSTNAME.test(e)))
      return `"${e}" is not an IP address or hostname (no port: the port is SIP_PORT)`;
  }
  if (list.length === 2 && net.isIP(list[0] ?? '') + net.isIP(list[1] ?? '') !== 10)
    return 'two addresses must be one IPv4 and one IPv6, e.g. 203.0.113.5,2001:db8::5';
  return undefined;
}

function firstInterfaceAddress(family: 'IPv4' | 'IPv6'): string | undefined {
  for (const addrs of Object.values(os.networkInterfaces())) {
    for (const a of addrs ?? []) {
      // Link-local IPv6 needs a zone id, which has no place in a SIP URI.
      if (a.family === family && !a.internal && !/^fe[89ab]/i.test(a.address)) return a.address;
    }
  }
  return undefined;
}

/** The Via/Contact addresses for the SIP_PUBLIC_ADDRESS `setting` and the listen address `host`. */
export function publicAddresses(setting: string, host: string): PublicAddresses {
  const list = entries(setting);
  if (list.length === 2) {
    const v4 = list.find((e) => net.isIPv4(e)) ?? '';
    const v6 = list.find((e) => net.isIPv6(e)) ?? '';
    return { publicAddress: v4, publicAddress6: v6 };
  }
  if (list.length === 1) return { publicAddress: list[0] ?? '' };
  const ipv4 = firstInterfaceAddress('IPv4') ?? '127.0.0.1';
  if (host === '0.0.0.0') return { publicAddress: ipv4 };
  // `::` is dual-stack: each family of peer gets an address of its own family.
  if (net.isIPv6(host) && /^[0:]+$/.test(host))
    return { publicAddress: ipv4, publicAddress6: firstInterfaceAddress('IPv6') ?? '::1' };
  return { publicAddress: host };
}
