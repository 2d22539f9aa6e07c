/**
 * CIDR parsing and matching on top of node:net's BlockList, which already handles IPv4, IPv6 and IPv4-mapped
 * IPv6 (`::ffff:10.1.2.3` matches `10.0.0.0/8`), so no bit arithmetic lives here.
 */
import net from 'node:net';
import type { CidrSet } from './types.ts';

export interface ParsedCidr {
  address: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

/**
 * Parse `address/prefix` or a bare address (= /32 or /128). Host bits beyond the prefix are allowed and ignored,
 * as most firewall syntaxes do. Returns a reason string on failure.
 */
export function parseCidr(text: string): ParsedCidr | string {
  const s = text.trim();
  const slash = s.indexOf('/');
  const address = slash === -1 ? s : s.slice(0, slash);
  const version = net.isIP(address);
  if (version === 0 || address.includes('%')) return `"${address}" is not an IPv4 or IPv6 address`;
  const family = version === 4 ? 'ipv4' : 'ipv6';
  const max = version === 4 ? 32 : 128;
  if (slash === -1) return { address, prefix: max, family };
  const prefixText = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) {
    return `prefix length "${prefixText}" must be an integer from 0 to ${max}`;
  }
  return { address, prefix: Number(prefixText), family };
}

export function compileCidrs(cidrs: readonly ParsedCidr[]): CidrSet {
  const list = new net.BlockList();
  for (const c of cidrs) list.addSubnet(c.address, c.prefix, c.family);
  return { cidrs: cidrs.map((c) => `${c.address}/${c.prefix}`), list };
}

/** Whether `ip` lies in the set. Unparseable input never matches (it must not throw inside call handling). */
export function cidrContains(set: CidrSet, ip: string): boolean {
  // Link-local IPv6 sources may carry a zone id (`fe80::1%eth0`); BlockList does not accept it.
  const addr = ip.trim().replace(/%.*$/, '');
  const version = net.isIP(addr);
  if (version === 0) return false;
  return set.list.check(addr, version === 4 ? 'ipv4' : 'ipv6');
}
