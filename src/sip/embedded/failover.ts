/**
 * One outbound INVITE tried on each next hop in turn (RFC 3263 §4.3), and the rules that decide when to go on.
 *
 * Each target gets a new client transaction: same Call-ID and From tag, a new Via branch, and the next CSeq. RFC 3263
 * §4.3 asks for "a new request identical to the previous but with a new branch"; we also raise the CSeq (as a digest
 * retry does, RFC 3261 §22.2) because a carrier's SBCs share a back end that may have seen the first request (a lost
 * response, not a dead SBC), and an identical Call-ID/From-tag/CSeq there is a merged request answered 482 (§8.2.2.2),
 * which would end the failover. Each target starts without credentials and answers its own challenge.
 *
 * Go on with the next target (and why):
 * - no response at all within targetTimeoutMs (a short Timer B), or a transport error: the SBC is unreachable;
 *   it is also held down for a while so the call's fallback INVITE and the next calls skip it;
 * - a 503 (RFC 3261 §21.5.4: try an alternate server); with Retry-After the target is held down that long (capped),
 *   as the same section asks. Not Telnyx's `503 CPS Limit reached`: the limit is per source IP, so another SBC would
 *   only count one more INVITE against it;
 * - a 408 sent by the target before any 18x: it could not reach its own next hop. After a 180 it means nobody
 *   answered, and another SBC would ring the callee again.
 * Never after any other final response (2xx, 3xx, 4xx, 5xx but 503, 6xx), nor once the call was cancelled or its
 * ring timeout fired. When every target failed, the INVITE fails with the last response a target sent, or with 503
 * when none answered at all (a PBX reads 503 as "try your next trunk"; 408 would read as "nobody picked up").
 */
import type { SipRequest, SipResponse } from './message.ts';
import type { SipTarget } from './rfc3263.ts';
import { type Credentials, transactWithAuth, type UaContext } from './ua-core.ts';

/** What became of one target's attempt (the `result` label of kallglot_gateway_sip_target_attempts_total). */
export type AttemptResult =
  | 'answered'
  | 'rejected'
  | 'unavailable'
  | 'cps_limit'
  | 'timeout'
  | 'transport_error'
  | 'cancelled';

export interface AttemptOutcome {
  result: AttemptResult;
  status: number;
  /** Try the next target. */
  failover: boolean;
  /** Skip this target in later INVITEs for this long (0: do not). */
  holdMs: number;
}

/** How long a target that did not answer at all is skipped (an answered OPTIONS probe brings it back sooner). */
export const SILENT_TARGET_HOLD_MS = 30_000;
/** The longest Retry-After we honour: a typo of a day must not blackhole an SBC for a day. */
export const MAX_RETRY_AFTER_HOLD_MS = 300_000;

/** The failover decision for one attempt (see the rules at the top). */
export function judgeAttempt(
  res: SipResponse,
  local: 'timeout' | 'transport' | undefined,
  ringing: boolean,
  abandoned: boolean,
): AttemptOutcome {
  const go = !abandoned;
  if (local === 'timeout') return { result: 'timeout', status: 408, failover: go, holdMs: SILENT_TARGET_HOLD_MS };
  if (local === 'transport')
    return { result: 'transport_error', status: 503, failover: go, holdMs: SILENT_TARGET_HOLD_MS };
  const status = res.status;
  if (status < 300) return { result: 'answered', status, failover: false, holdMs: 0 };
  if (abandoned) return { result: 'cancelled', status, failover: false, holdMs: 0 };
  if (status === 503) {
    if (/\bCPS\b/i.test(res.reason)) return { result: 'cps_limit', status, failover: false, holdMs: 0 };
    const retryAfter = Number.parseInt(res.headers.get('Retry-After') ?? '', 10);
    const holdMs =
      Number.isFinite(retryAfter) && retryAfter > 0 ? Math.min(retryAfter * 1000, MAX_RETRY_AFTER_HOLD_MS) : 0;
    return { result: 'unavailable', status, failover: true, holdMs };
  }
  if (status === 408 && !ringing) return { result: 'unavailable', status, failover: true, holdMs: 0 };
  return { result: 'rejected', status, failover: false, holdMs: 0 };
}

export interface FailoverHooks {
  /** Each new client transaction (a target, or a digest retry on it): the one a CANCEL must name. */
  onAttempt(req: SipRequest, dest: SipTarget): void;
  onProvisional(res: SipResponse): void;
  /**
   * The attempt's final response is a 2xx: what handles the 2xx after it (retransmissions, forks: they need an ACK
   * too) while its transaction lingers (RFC 6026 Accepted). It must not reach the call: see answered-invite.ts.
   */
  late2xxHandler(req: SipRequest, dest: SipTarget): (res: SipResponse) => void;
  /** Cancelled or timed out by the user: no further target. */
  abandoned(): boolean;
  /** The target stayed silent and its transaction was ended: whatever it sends later must still be cleaned up. */
  onSilent(req: SipRequest, target: SipTarget): void;
  /** One attempt is over: log it, count it, hold the target down when the outcome says so. */
  report(target: SipTarget, outcome: AttemptOutcome, ms: number): void;
}

export interface FailoverSpec {
  ctx: UaContext;
  /** Targets to try, in order (down ones already left out). Never empty. */
  targets: readonly SipTarget[];
  /** The INVITE for one target with the given CSeq (its Via and Contact name the target's transport and family). */
  build(target: SipTarget, cseq: number): SipRequest;
  auth: Credentials | undefined;
  /** Silence allowed per target (Timer B of each attempt); undefined: 64*T1. */
  targetTimeoutMs: number | undefined;
}

export interface FailoverResult {
  response: SipResponse;
  request: SipRequest;
  dest: SipTarget;
}

/** Try the targets in turn; the final response that ends the INVITE, with the request and target it belongs to. */
export async function inviteTargets(spec: FailoverSpec, hooks: FailoverHooks): Promise<FailoverResult> {
  let cseq = 0;
  const nextCSeq = (): number => ++cseq;
  let lastSent: FailoverResult | undefined;
  let last: FailoverResult | undefined;
  for (const target of spec.targets) {
    const { outcome, result } = await attempt(spec, hooks, target, nextCSeq);
    last = result;
    if (outcome.result !== 'timeout' && outcome.result !== 'transport_error') lastSent = result;
    if (!outcome.failover) return result;
  }
  if (!last) throw new Error('inviteTargets needs at least one target');
  spec.ctx.logger.warn({ targets: spec.targets.length, status: lastSent?.response.status }, 'every SIP target failed');
  return lastSent ?? { ...last, response: { ...last.response, status: 503, reason: 'Service Unavailable' } };
}

async function attempt(
  spec: FailoverSpec,
  hooks: FailoverHooks,
  target: SipTarget,
  nextCSeq: () => number,
): Promise<{ outcome: AttemptOutcome; result: FailoverResult }> {
  const started = Date.now();
  let local: 'timeout' | 'transport' | undefined;
  let ringing = false;
  let current = spec.build(target, nextCSeq());
  const { response, request } = await transactWithAuth(spec.ctx, current, target, spec.auth, nextCSeq, {
    timeoutMs: spec.targetTimeoutMs,
    onLocalFailure: (why) => {
      local = why;
    },
    onAttempt: (req) => {
      current = req;
      hooks.onAttempt(req, target);
    },
    onProvisional: (res) => {
      if (res.status > 100) ringing = true;
      hooks.onProvisional(res);
    },
    late2xxHandler: (req) => hooks.late2xxHandler(req, target),
  });
  if (local === 'timeout') hooks.onSilent(current, target);
  const outcome = judgeAttempt(response, local, ringing, hooks.abandoned());
  hooks.report(target, outcome, Date.now() - started);
  return { outcome, result: { response, request, dest: target } };
}
