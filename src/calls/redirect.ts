/**
 * Following a 3xx from Telnyx (RFC 3261 §8.1.3.4, §21.3): its Contact values are the targets, tried in order of
 * their q-value (highest first, 1.0 when absent). A redirect is an instruction from the network to send the call
 * somewhere else, so only hosts the operator allows are followed: a redirect to anywhere would let whoever answers
 * our INVITE send the caller (and our Telnyx credentials' digest answers) to any host on the internet.
 */
import net from 'node:net';
import type { HeaderList } from '../sip/port.ts';
import { parseNameAddr } from '../sip/syntax/address.ts';
import { splitHeaderList } from '../sip/syntax/lex.ts';
import { stripBrackets } from '../sip/syntax/uri.ts';

/** How many redirects one leg follows before it gives up (a loop or a redirect chain). */
export const MAX_REDIRECTS = 3;

export function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** The Contact values of a 3xx to allowed sip:/sips: hosts, highest q first (stable among equals). */
export function redirectTargets(headers: HeaderList, allowedHosts: readonly string[]): string[] {
  const targets: Array<{ uri: string; q: number; order: number }> = [];
  for (const [name, value] of headers) {
    if (name.toLowerCase() !== 'contact' && name.toLowerCase() !== 'm') continue;
    for (const entry of splitHeaderList(value)) {
      try {
        const addr = parseNameAddr(entry);
        if (addr.uri.scheme !== 'sip' && addr.uri.scheme !== 'sips') continue;
        if (!hostAllowed(addr.uri.host, allowedHosts)) continue;
        const q = Number.parseFloat(addr.params.q ?? '1');
        targets.push({ uri: addr.rawUri, q: Number.isFinite(q) ? q : 1, order: targets.length });
      } catch {
        // an unparseable Contact is no target
      }
    }
  }
  return targets.sort((a, b) => b.q - a.q || a.order - b.order).map((t) => t.uri);
}

/** An IP must be listed as it is; a name matches itself and its subdomains (a leading dot in the list is optional). */
export function hostAllowed(host: string, allowedHosts: readonly string[]): boolean {
  const h = stripBrackets(host).toLowerCase();
  return allowedHosts.some((raw) => {
    const allowed = stripBrackets(raw.trim().replace(/^\./, '')).toLowerCase();
    if (!allowed) return false;
    if (net.isIP(allowed) || net.isIP(h)) return h === allowed;
    return h === allowed || h.endsWith(`.${allowed}`);
  });
}
