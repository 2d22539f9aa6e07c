/**
 * One outbound leg: toward Telnyx (every translated leg, and an outbound call's direct route) or toward the PBX (an
 * inbound call's direct route). The INVITE, what the caller hears while it rings, and 3xx redirects followed per
 * REDIRECT_POLICY. The call session stays the owner: it is told of each attempt (so a CANCEL or a hang-up can stop
 * the INVITE in flight) and decides what an outcome means for the call.
 *
 * Early media vs fallback: while a fallback is still possible (`lastRoute` false) the PBX gets a plain 180 (no SDP),
 * so it never sees early media from a leg we might abandon; on the last route 18x are relayed as they are.
 */
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { SipError, type Dialog, type HeaderList, type InboundCall, type SipEngine } from '../sip/port.ts';
import { isRedirect, MAX_REDIRECTS, redirectTargets } from './redirect.ts';
import { pbxInvite } from './pbx-invite.ts';
import { telnyxInvite } from './telnyx-invite.ts';

export type LegOutcome =
  | { answered: true; dialog: Dialog }
  | { answered: false; status: number; reason: string; headers: HeaderList };

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
  log: Logger;
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
  const allowed = redirectAllowedDomains.length ? redirectAllowedDomains : [owner.config.telnyx.sipDomain];
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
  const spec = { uri, extraHeaders, timeoutMs };
  const out = owner.engine.invite(
    leg.toward === 'pbx' ? pbxInvite(call, owner.config, spec) : telnyxInvite(call, owner.config.telnyx, spec),
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
  log.info({ uri, lastRoute }, 'outbound INVITE');
  try {
    const dialog = await out.result;
    owner.attempt(uri, undefined);
    return { answered: true, dialog };
  } catch (err) {
    owner.attempt(uri, undefined);
    const e = err instanceof SipError ? err : new SipError(500, 'Server Internal Error');
    log.info({ uri, status: e.status, reason: e.reason }, 'outbound leg failed');
    return { answered: false, status: e.status, reason: e.reason, headers: e.headers };
  }
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
