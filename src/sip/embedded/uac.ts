/**
 * An outbound INVITE of the embedded engine (the Telnyx leg): tried on each RFC 3263 next hop in turn (targets.ts
 * plans, failover.ts decides), digest challenges, CANCEL (sent only after a provisional, RFC 3261 §9.1), a ring
 * timeout, and the CANCEL/200 race (a 2xx after we gave up is ACKed then BYEd).
 */
import type { Dialog, OutboundCall, OutboundInviteOptions, ProvisionalResponse } from '../port.ts';
import { SipError } from '../port.ts';
import { quoteDisplayName } from '../syntax/address.ts';
import {
  ackAndBye,
  type AnsweredInvite,
  answeredInvite,
  type DialogTable,
  dialogFor2xx,
  late2xxHandler,
} from './answered-invite.ts';
import type { EmbeddedDialog } from './dialog.ts';
import { newCallId, newTag } from './ids.ts';
import type { SipEndpoint, SipRequest, SipResponse, SipTransportName } from './message.ts';
import { inviteTargets } from './failover.ts';
import { buildNon2xxAck, topVia } from './transaction-helpers.ts';
import type { SipTarget } from './rfc3263.ts';
import type { TargetPlan, TargetRouter } from './targets.ts';
import { buildRequest, transact, type UaContext } from './ua-core.ts';

export interface UacHooks extends DialogTable {
  /** Where the INVITE may go (RFC 3263 targets less the down ones, or the outbound proxy), and where outcomes go. */
  targets: Pick<TargetRouter, 'plan' | 'report'>;
  /** Hand later responses to the INVITE with this branch (an attempt given up on) to `handler` (late-answers.ts). */
  watchLate(branch: string, handler: (res: SipResponse) => void): void;
}

export class EmbeddedOutboundCall implements OutboundCall {
  readonly callId: string;
  readonly result: Promise<Dialog>;
  readonly #ctx: UaContext;
  readonly #opts: OutboundInviteOptions;
  readonly #hooks: UacHooks;
  readonly #localTag = newTag();
  readonly #transport: SipTransportName;
  #provisionalHandlers: Array<(res: ProvisionalResponse) => void> = [];
  #resolveResult!: (d: Dialog) => void;
  #rejectResult!: (e: SipError) => void;
  #settled = false;
  #finalReceived = false;
  /** Why we gave up before a final response ('cancel' or 'timeout'); a 2xx after that is ACKed and BYEd. */
  #abandoned: 'cancel' | 'timeout' | undefined;
  #currentRequest: SipRequest | undefined;
  #currentDest: SipEndpoint | undefined;
  #provisionalSeen = false;
  #cancelSent = false;
  #cancelHeaders: OutboundInviteOptions['headers'];
  #ringTimer: NodeJS.Timeout | undefined;

  constructor(ctx: UaContext, opts: OutboundInviteOptions, hooks: UacHooks) {
    this.#ctx = ctx;
    this.#opts = opts;
    this.#hooks = hooks;
    this.#transport = opts.transport ?? 'udp';
    this.callId = newCallId(ctx.publicAddress);
    this.result = new Promise<Dialog>((resolve, reject) => {
      this.#resolveResult = resolve;
      this.#rejectResult = reject;
    });
    // Callers may only attach handlers later; never let a rejection be reported as unhandled.
    this.result.catch(() => undefined);
    void this.#run();
  }

  onProvisional(cb: (res: ProvisionalResponse) => void): void {
    this.#provisionalHandlers.push(cb);
  }

  cancel(opts: { headers?: OutboundInviteOptions['headers'] } = {}): void {
    if (this.#finalReceived || this.#abandoned) return;
    this.#abandoned = 'cancel';
    this.#cancelHeaders = opts.headers;
    this.#fail(new SipError(487, 'Request Terminated'));
    this.#maybeSendCancel();
  }

  async #run(): Promise<void> {
    const [opts, ctx] = [this.#opts, this.#ctx];
    const plan = await this.#plan();
    if (!plan || this.#abandoned) return;
    if (opts.timeoutMs) {
      this.#ringTimer = setTimeout(() => {
        if (this.#finalReceived || this.#abandoned) return;
        this.#abandoned = 'timeout';
        this.#fail(new SipError(408, 'Request Timeout'));
        this.#maybeSendCancel();
      }, opts.timeoutMs);
    }
    const build = (dest: SipTarget, cseq: number): SipRequest => this.#buildInvite(dest, cseq);
    const spec = { ctx, targets: plan.targets, build, auth: opts.auth, targetTimeoutMs: opts.targetTimeoutMs };
    const { response, request, dest } = await inviteTargets(spec, {
      onAttempt: (req, target) => {
        this.#currentRequest = req;
        this.#currentDest = target;
        this.#provisionalSeen = false;
      },
      onProvisional: (res) => this.#handleProvisional(res),
      // Later 2xx (retransmissions, forks) reach only this, which holds none of the call (answered-invite.ts).
      late2xxHandler: (req, target) => late2xxHandler(this.#answered(req, target)),
      abandoned: () => this.#abandoned !== undefined,
      onSilent: (req, target) => this.#watchLate(req, target),
      report: (target, outcome, ms) =>
        this.#hooks.targets.report(target, outcome, { tracked: plan.tracked, callId: this.callId, ms }),
    });
    this.#finalReceived = true;
    this.#provisionalHandlers = []; // no provisional after the final response: let the call logic go
    this.#currentRequest = undefined; // only a CANCEL needed it
    this.#stopRingTimer();
    if (response.status >= 200 && response.status < 300) this.#handle2xx(response, request, dest);
    else this.#fail(new SipError(response.status, response.reason, response.headers.lines()));
  }

  /** Clean up after a target given up on, if it answers after all (late-answers.ts says how and why). */
  #watchLate(req: SipRequest, dest: SipTarget): void {
    const branch = topVia(req).params.branch;
    if (typeof branch !== 'string') return;
    let cancelled = false;
    this.#hooks.watchLate(branch, (res) => {
      if (res.status >= 300) this.#ctx.sendRaw(buildNon2xxAck(req, res), dest);
      else if (res.status >= 200) ackAndBye(this.#answered(req, dest), res, 'late');
      else if (!cancelled) {
        cancelled = true;
        this.#ctx.logger.info(
          { callId: this.callId, status: res.status },
          'late provisional from a target given up on: CANCEL',
        );
        void transact(this.#ctx, this.#ctx.tx.buildCancel(req), dest);
      }
    });
  }

  /** The INVITE for one target: same Call-ID and From tag on every target, the target's transport in Via/Contact. */
  #buildInvite(dest: SipTarget, cseq: number): SipRequest {
    const opts = this.#opts;
    const from = `${opts.from.displayName ? `${quoteDisplayName(opts.from.displayName)} ` : ''}<${opts.from.uri}>;tag=${this.#localTag}`;
    const to = `${opts.to?.displayName ? `${quoteDisplayName(opts.to.displayName)} ` : ''}<${opts.to?.uri ?? opts.uri}>`;
    return buildRequest(this.#ctx, {
      method: 'INVITE',
      uri: opts.uri,
      // The transport the next hop was resolved to (NAPTR/SRV, a sips: URI or ;transport= may override the default).
      transport: dest.transport,
      peer: dest.address,
      from,
      to,
      callId: this.callId,
      cseq,
      contact: true,
      headers: opts.headers,
      body: opts.body,
      contentType: opts.contentType,
      maxForwards: opts.maxForwards,
    });
  }

  /** The targets to try, or undefined after failing the call: nothing resolved (503), or every target is down (503). */
  async #plan(): Promise<TargetPlan | undefined> {
    const [opts, ctx] = [this.#opts, this.#ctx];
    let plan: TargetPlan;
    try {
      plan = await this.#hooks.targets.plan(opts.uri, opts.proxy, this.#transport, opts.targetTimeoutMs !== undefined);
    } catch (err) {
      ctx.logger.warn({ err, uri: opts.uri }, 'cannot resolve destination');
      this.#finalReceived = true;
      this.#fail(new SipError(503, 'Destination Unresolvable'));
      return undefined;
    }
    if (plan.targets.length > 0) return plan;
    // Every target failed moments ago or fails its probes: waiting on them again would only delay the caller's 503.
    this.#finalReceived = true;
    this.#fail(new SipError(503, 'Service Unavailable'));
    return undefined;
  }

  #handleProvisional(res: SipResponse): void {
    this.#provisionalSeen = true;
    this.#maybeSendCancel();
    if (res.status === 100 || this.#abandoned || this.#finalReceived) return;
    const p: ProvisionalResponse = {
      status: res.status,
      reason: res.reason,
      headers: res.headers.lines(),
      body: res.body,
      contentType: res.headers.get('Content-Type'),
    };
    for (const cb of this.#provisionalHandlers) cb(p);
  }

  #maybeSendCancel(): void {
    if (
      !this.#abandoned ||
      this.#cancelSent ||
      this.#finalReceived ||
      !this.#provisionalSeen ||
      !this.#currentRequest ||
      !this.#currentDest
    )
      return;
    this.#cancelSent = true;
    const cancel = this.#ctx.tx.buildCancel(this.#currentRequest);
    if (this.#cancelHeaders)
      for (const [n, v] of this.#cancelHeaders) if (/^(reason|x-)/i.test(n)) cancel.headers.append(n, v);
    void transact(this.#ctx, cancel, this.#currentDest);
  }

  /** The INVITE reduced to what its dialog and later 2xx need (answered-invite.ts). */
  #answered(req: SipRequest, dest: SipEndpoint): AnsweredInvite {
    const { addDialog, removeDialog, findDialog, resolveNextHop } = this.#hooks; // not the hooks: no watchLate, targets
    const dialogs = { addDialog, removeDialog, findDialog, resolveNextHop };
    return answeredInvite(this.#ctx, dialogs, req, dest, this.#opts);
  }

  #handle2xx(res: SipResponse, req: SipRequest, dest: SipEndpoint): void {
    const invite = this.#answered(req, dest);
    if (this.#abandoned) {
      // The CANCEL/200 race or a ring timeout: nobody waits for this dialog.
      ackAndBye(invite, res, this.#abandoned);
      return;
    }
    const dialog = dialogFor2xx(invite, res);
    if (this.#opts.deferAck) {
      // Delayed offer: the ACK carries the caller's answer, which the user supplies through dialog.ack().
      dialog.deferInitialAck(invite.cseq);
    } else {
      dialog.ackInitial(invite.cseq).catch((err: unknown) => {
        this.#ctx.logger.warn({ err, callId: this.callId }, 'cannot send ACK');
      });
    }
    this.#settle(dialog);
  }

  #settle(dialog: EmbeddedDialog): void {
    this.#settled = true;
    this.#resolveResult(dialog);
  }

  #fail(err: SipError): void {
    if (this.#settled) return;
    this.#settled = true;
    // The INVITE transaction may linger 32 s (RFC 6026 Accepted) holding this call: hold no call-logic closure.
    this.#provisionalHandlers = [];
    this.#stopRingTimer();
    this.#rejectResult(err);
  }

  /** Forget the timer too: the call lingers 32 s after its end (RFC 6026 Accepted), its cleared Timeout with it. */
  #stopRingTimer(): void {
    clearTimeout(this.#ringTimer);
    this.#ringTimer = undefined;
  }
}
