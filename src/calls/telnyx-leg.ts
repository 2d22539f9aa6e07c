/**
 * One outbound leg: toward Telnyx (every translated leg, and an outbound call's direct route) or toward the PBX (an
 * inbound call's direct route). The INVITE, what the caller hears while it rings, and 3xx redirects followed per
 * REDIRECT_POLICY. The call session stays the owner: it is told of each attempt (so a CANCEL or a hang-up can stop
 * the INVITE in flight) and decides what an outcome means for the call.
 *
 * Early media vs fallback: while a fallback is still possible (`lastRoute` false) the PBX gets a plain 180 (no SDP),
 * so it never sees early media from a leg we might abandon; on the last route 18x are relayed as they are.
 *
 * Every INVITE toward Telnyx (translated, fallback, redirected) first takes a permit of the call's Telnyx trunk
 * (trunk-limits.ts); one the trunk's CPS or concurrency limit refuses is never sent, and its outcome says `limited`.
 */
import type { GatewayConfig } from '../config/load.ts';
import type { TelnyxTrunk } from '../config/trunks.ts';
import type { LineLogger } from '../logger.ts';
import { SipError, type Dialog, type HeaderList, type InboundCall, type SipEngine } from '../sip/port.ts';
import { isRedirect, MAX_REDIRECTS, redirectTargets } from './redirect.ts';
import { pbxInvite } from './pbx-invite.ts';
import { telnyxInvite } from './telnyx-invite.ts';
import type { TrunkLimit, TrunkLimits, TrunkPermit } from './trunk-limits.ts';

export type LegOutcome =
  | { answered: true; dialog: Dialog }
  | {
      answered: false;
      status: number;
      reason: string;
      headers: HeaderList;
      /** Not sent at all: the trunk's limit refused it (status 503). Another INVITE on that trunk would fare no better. */
      limited?: TrunkLimit;
    };

export interface LegOptions {
  uri: string;
  /** Added to the headers passed through from the PBX's INVITE. */
  extraHeaders?: HeaderList;
  /** The last route this call can take: its early media (18x with SDP) may then reach the PBX as it is. */
  lastRoute: boolean;
  /** Give up (CANCEL) when not answered in time; absent: the caller and Telnyx decide. */
  timeoutMs?: number;
  /** Where the leg goes: Telnyx (default; redirects followed per REDIRECT_POLICY) or the PBX (an inbound call's direct route). */
  toward?: 'telnyx' | 'pbx';
}

/** What a leg needs from the call it belongs to. */
export interface LegOwner {
  engine: SipEngine;
  call: InboundCall;
  config: GatewayConfig;
  /** The Telnyx trunk the call goes out on, and the limits every INVITE toward it passes. */
  trunk: TelnyxTrunk;
  limits: TrunkLimits;
  log: LineLogger;
  cancelled(): boolean;
  /** Cancelled or finished: no further attempt. */
  over(): boolean;
  /** An INVITE to `uri` is in flight (`pending` can cancel it), or none is (undefined). */
  attempt(uri: string, pending: { cancel(): void } | undefined): void;
}

/**
 * The leg, following redirects (REDIRECT_POLICY=follow) to allowed hosts, at most MAX_REDIRECTS times and never
 * twice to the same target; the outcome of the last attempt.
 */
export async function dialLeg(owner: LegOwner, leg: LegOptions): Promise<LegOutcome> {
  const { redirectAllowedDomains } = owner.config.calls;
  // Redirects are Telnyx's instructions; the PBX's own 3xx is its business and goes back to the caller (relay).
  const redirectPolicy = leg.toward === 'pbx' ? 'relay' : owner.config.calls.redirectPolicy;
  const allowed = redirectAllowedDomains.length ? redirectAllowedDomains : [owner.trunk.sipDomain];
  const tried = new Set([leg.uri]);
  let outcome = await attempt(owner, leg);
  for (let hops = 0; hops < MAX_REDIRECTS && redirectPolicy === 'follow'; hops++) {
    if (outcome.answered || !isRedirect(outcome.status) || owner.over()) break;
    const next = redirectTargets(outcome.headers, allowed).find((t) => !tried.has(t));
    if (!next) {
      owner.log.warn({ status: outcome.status }, 'redirect not followed: no allowed target (REDIRECT_ALLOWED_DOMAINS)');
      break;
    }
    tried.add(next);
    owner.log.info({ status: outcome.status, target: next }, 'following redirect');
    outcome = await attempt(owner, { ...leg, uri: next });
  }
  return outcome;
}

async function attempt(owner: LegOwner, leg: LegOptions): Promise<LegOutcome> {
  const { call, log } = owner;
  const { uri, extraHeaders = [], lastRoute, timeoutMs } = leg;
  const toTelnyx = leg.toward !== 'pbx';
  const permit = toTelnyx ? await trunkPermit(owner, uri) : undefined;
  if (permit && 'answered' in permit) return permit; // refused or cancelled while waiting: nothing was sent
  const spec = { uri, extraHeaders, timeoutMs };
  const out = owner.engine.invite(
    toTelnyx ? telnyxInvite(call, owner.config.telnyx, spec, owner.trunk) : pbxInvite(call, owner.config, spec),
  );
  owner.attempt(uri, out);
  let ringingSent = false;
  out.onProvisional((p) => {
    if (owner.cancelled()) return;
    if (lastRoute) {
      call.sendProvisional(p.status, { reason: p.reason, body: p.body, contentType: p.contentType });
    } else if (!ringingSent) {
      ringingSent = true;
      call.sendProvisional(180, { reason: 'Ringing' });
    }
  });
  // debug: at info a call is one line, its summary (which names the last URI dialled and the trunk).
  log.debug({ uri, lastRoute, ...(toTelnyx && { trunk: owner.trunk.name }) }, 'outbound INVITE');
  try {
    const dialog = await out.result;
    owner.attempt(uri, undefined);
    // An answered call counts against the trunk's concurrency until its dialog ends, however it ends.
    dialog.onEnd(() => permit?.release());
    if (dialog.ended) permit?.release();
    return { answered: true, dialog };
  } catch (err) {
    owner.attempt(uri, undefined);
    permit?.release();
    const e = err instanceof SipError ? err : new SipError(500, 'Server Internal Error');
    log.debug({ uri, status: e.status, reason: e.reason }, 'outbound leg failed'); // the summary has sipStatus
    return { answered: false, status: e.status, reason: e.reason, headers: e.headers };
  }
}

/**
 * A permit of the call's Telnyx trunk, or the outcome when there is none: refused by its CPS or concurrency limit
 * (503, never sent: Telnyx would answer `503 CPS Limit reached` or `403 User channel limit exceeded`), or cancelled
 * while it waited (the permit goes back at once).
 */
async function trunkPermit(owner: LegOwner, uri: string): Promise<TrunkPermit | LegOutcome> {
  const { trunk, log } = owner;
  const ticket = await owner.limits.acquire(trunk.name);
  if (!ticket.granted) {
    const limit =
      ticket.limit === 'cps' ? { maxCallsPerSecond: trunk.maxCallsPerSecond } : { maxConcurrent: trunk.maxConcurrent };
    log.warn(
      { uri, trunk: trunk.name, limit: ticket.limit, ...limit, waitedMs: ticket.waitedMs },
      `INVITE not sent: Telnyx trunk ${trunk.name} is at its ${ticket.limit === 'cps' ? 'calls-per-second' : 'concurrent-call'} limit; 503 to the caller`,
    );
    return {
      answered: false,
      status: 503,
      reason: 'Service Unavailable',
      headers: [['Retry-After', '1']],
      limited: ticket.limit,
    };
  }
  if (owner.over()) {
    ticket.permit.release();
    return { answered: false, status: 487, reason: 'Request Terminated', headers: [] };
  }
  if (ticket.waitedMs > 0)
    log.info({ trunk: trunk.name, waitedMs: ticket.waitedMs }, 'INVITE waited for a slot on its Telnyx trunk');
  return ticket.permit;
}

/**
 * A 3xx on the last route, for the PBX: relayed with its Contact (REDIRECT_POLICY=relay: the PBX follows it), else,
 * when the gateway could not follow it (no allowed target left), 503: the PBX must not be sent somewhere the gateway
 * refused to go. Undefined for anything but a 3xx.
 */
export function redirectToCaller(
  outcome: Extract<LegOutcome, { answered: false }>,
  policy: 'follow' | 'relay',
): { status: number; reason: string; headers: HeaderList } | undefined {
  if (!isRedirect(outcome.status)) return undefined;
  if (policy === 'relay') {
    const contacts = outcome.headers.filter(([n]) => /^(contact|m)$/i.test(n));
    return { status: outcome.status, reason: outcome.reason, headers: contacts };
  }
  return { status: 503, reason: 'Service Unavailable', headers: [] };
}
