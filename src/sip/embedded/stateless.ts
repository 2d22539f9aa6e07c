/**
 * Stateless replies (RFC 3261 §8.2.7; Kamailio's sl_send_reply): a final response built from the request's headers
 * and sent once, with nothing kept for it. The engine uses them for the admission screen's overload refusals, where
 * a server transaction (100 Trying, retransmissions of the 503, timers G, H and I, the InboundCall) would cost more
 * than the refusal protects.
 */
import type { HeaderList } from '../port.ts';
import { randomHex } from './ids.ts';
import type { SipRequest, SipResponse } from './message.ts';
import { buildResponse } from './transaction-helpers.ts';
import { passThroughHeaders } from './ua-core.ts';
import type { Via } from './via.ts';

/** Per process: tags stay consistent for one request's retransmissions but cannot be predicted from the request. */
const SALT = randomHex(8);

/** FNV-1a over UTF-16 code units, 32 bits: a few nanoseconds per character, and spreads well enough for a tag. */
function fnv1a(text: string, seed: number): string {
  let hash = seed;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(16).padStart(8, '0');
}

/**
 * §8.2.7: a stateless UAS "MUST generate the same tag for the same request consistently", so a retransmitted INVITE
 * is refused with the very response the first copy got. Derived from what identifies the transaction (branch, or
 * for an RFC 2543 peer Call-ID, From and CSeq) and a per-process salt.
 */
export function statelessTag(req: SipRequest, via: Via): string {
  const branch = typeof via.params.branch === 'string' ? via.params.branch : '';
  const h = req.headers;
  const key = `${SALT}|${branch}|${h.get('Call-ID') ?? ''}|${h.get('From') ?? ''}|${h.get('CSeq') ?? ''}`;
  return `sl${fnv1a(key, 0x811c9dc5)}${fnv1a(key, 0x050c5d1f)}`;
}

/** The final response a stateless UAS sends to `req`: the §8.2.6 copy of Via, From, To (plus tag), Call-ID, CSeq. */
export function statelessReply(
  req: SipRequest,
  via: Via,
  status: number,
  reason: string,
  headers: HeaderList = [],
): SipResponse {
  return buildResponse(req, status, reason, { toTag: statelessTag(req, via), headers: passThroughHeaders(headers) });
}
