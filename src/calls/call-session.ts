/**
 * One admitted call, from the PBX's INVITE to the last BYE. It owns both legs and every cleanup:
 *   route → Kallglot session → translated leg → (fallback: direct leg) → bridge → teardown.
 *
 * Races handled here (see docs/call-flow.md):
 * - CANCEL can arrive during any await: `cancelled` is checked after each one, an outbound leg in progress is
 *   cancelled, and a session created meanwhile is ended (even by a create failed here: sessions/create-resolver.ts).
 * - Early media vs fallback: while a fallback is still possible we relay a plain 180 (no SDP), so the PBX never
 *   sees early media from a leg we might abandon. On the direct route (the last one) 18x are relayed as they are.
 * - Exactly-once teardown: `finish()` is idempotent, ends the session once, BYEs the other leg, unlinks both.
 * - CANCEL (or a hang-up) while an INVITE waits for a slot of its Telnyx trunk: the slot, once given, goes back at
 *   once and nothing is sent (telnyx-leg.ts); a slot never given ends as a 503 nobody hears.
 */
import { DEFAULT_TRUNK_NAME, type TelnyxTrunk } from '../config/trunks.ts';
import { LazyChildLogger } from '../logger.ts';
import type { KallglotSession, EndReason } from '../kallglot/types.ts';
import type { RouteDecision, TranslatedDecision } from '../routing/types.ts';
import { onSessionFailure } from '../sessions/failure-policy.ts';
import { sessionRequest } from '../sessions/request.ts';
import type { Dialog, DialogEnd, InboundCall, SipEngine } from '../sip/port.ts';
import { bridgeInDialogRequests, holdEarlyRequests, type RelayContext } from './bridge.ts';
import { dialLeg, type LegOptions, type LegOutcome, redirectToCaller } from './telnyx-leg.ts';
import { callerFailure, fillUriTemplate, isFinalFailure, passThroughEndHeaders, sessionTimerAnswer } from './policy.ts';
import { GATEWAY_HANGUPS, type CallDeps, type CallRoute, type CallSummary, type GatewayHangup } from './types.ts';
import { type CallNumbers, trunkUri } from './trunk-dialling.ts';
import type { TrunkLimit } from './trunk-limits.ts';
import type { HeaderList } from '../sip/port.ts';

export class CallSession {
  readonly #call: InboundCall;
  readonly #deps: CallDeps;
  readonly #decision: RouteDecision;
  readonly #log: LazyChildLogger;
  readonly #startedAt = Date.now();
  #cancelled = false;
  #finished = false;
  #session: KallglotSession | undefined;
  #currentLeg: { cancel(): void } | undefined;
  #pbxDialog: Dialog | undefined;
  #telnyxDialog: Dialog | undefined;
  #route: CallRoute = 'rejected';
  #fallbackReason: string | undefined;
  #answeredAt: number | undefined;
  #telnyxUri: string | undefined;
  #maxDurationTimer: NodeJS.Timeout | undefined;
  #sessionTimerWatchdog: NodeJS.Timeout | undefined;

  constructor(call: InboundCall, decision: RouteDecision, deps: CallDeps) {
    this.#call = call;
    this.#decision = decision;
    this.#deps = deps;
    // A pino child only at the call's first enabled line: at info a normal call has none (the summary is not its).
    this.#log = new LazyChildLogger(deps.logger, { callId: call.callId });
    call.onCancel(() => this.#onCallerCancel());
  }

  async run(): Promise<void> {
    try {
      if (this.#decision.mode === 'bypass') {
        await this.#direct('bypass', 'bypass');
        return;
      }
      await this.#translated(this.#decision);
    } catch (err) {
      this.#log.error({ err }, 'call failed unexpectedly');
      this.#call.reject(500, { reason: 'Server Internal Error' });
      this.#finish({ reason: 'error', detail: 'internal_error', status: 500 });
    }
  }

  get #engine(): SipEngine {
    return this.#deps.engine;
  }

  async #translated(decision: TranslatedDecision): Promise<void> {
    const { config } = this.#deps;
    const { callId, callingUser: from, calledUser: to } = this.#call;
    let session: KallglotSession;
    try {
      session = await this.#deps.kallglot.createSession(
        sessionRequest(
          decision,
          {
            channel: 'sip',
            callId,
            from,
            to: decision.calledNumber ?? to,
            pbxSource: this.#call.source.address,
            // Kallglot is told the untranslated destination: the same URI the direct route would dial.
            otherPartyUri: this.#directUri(),
          },
          config.kallglot.requestStyle,
        ),
      );
    } catch (err) {
      if (this.#cancelled || this.#finished) return; // finished: hung up (drain/shutdown) while we waited
      const next = onSessionFailure(err, config.calls.rateLimitPolicy);
      this.#log.warn({ err, action: next.action }, 'Kallglot session could not be created');
      if (next.action === 'busy') {
        const status = config.calls.busyStatus;
        const headers: HeaderList =
          status === 503 && next.retryAfterSec ? [['Retry-After', String(next.retryAfterSec)]] : [];
        this.#call.reject(status, { reason: status === 486 ? 'Busy Here' : 'Service Unavailable', headers });
        this.#finish({ reason: 'rejected', detail: `kallglot_${next.reason}`, status });
        return;
      }
      await this.#direct('fallback', `kallglot_${next.reason}`);
      return;
    }
    this.#session = session;
    this.#log.bind({ sessionId: session.id }); // from here on every line of the call names its session
    this.#log.debug('Kallglot session created'); // info gets one line per call: the summary
    const persisted = this.#deps.hooks?.sessionCreated?.(this.#call.callId, session.id);
    if (persisted) await persisted; // a shared registry: the session id is durable before the INVITE leaves
    if (this.#cancelled || this.#finished) {
      // finish() ran before the session existed (CANCEL, or hangUpBoth on drain/shutdown): end the late session.
      this.#endSession(
        this.#cancelled ? 'agent_hangup' : 'completed',
        this.#cancelled ? 'caller_cancelled' : 'finished_during_create',
      );
      return;
    }
    const uri = trunkUri(this.#trunk, 'translated', this.#numbers(), { session_id: session.id });
    this.#route = 'translated';
    const outcome = await this.#leg({
      uri,
      extraHeaders: [['X-Kallglot-Session-Id', session.id]],
      lastRoute: false,
      timeoutMs: config.calls.translatedLegTimeoutSec * 1000,
    });
    if (outcome.answered) {
      await this.#bridge(outcome.dialog, 'translated');
      return;
    }
    if (this.#cancelled || this.#finished) return; // finish() ran from the cancel or hang-up path: no fallback
    if (outcome.limited) return this.#refuseOverTrunkLimit(outcome.limited);
    if (isFinalFailure(outcome.status)) {
      this.#endSession('completed', `translated_leg_${outcome.status}`);
      this.#call.reject(outcome.status, { reason: outcome.reason });
      this.#route = 'translated';
      this.#finish({ reason: 'rejected', detail: `translated_leg_${outcome.status}`, status: outcome.status });
      return;
    }
    this.#endSession('error', `translated_leg_failed_${outcome.status}`);
    await this.#direct('fallback', `translated_leg_${outcome.status}`);
  }

  async #direct(route: 'fallback' | 'bypass', why: string): Promise<void> {
    this.#route = route;
    this.#fallbackReason = route === 'fallback' ? why : undefined;
    if (route === 'fallback') this.#log.warn({ why }, 'falling back to the untranslated direct route');
    const toward = this.#deps.direction === 'inbound' ? 'pbx' : 'telnyx';
    const outcome = await this.#leg({ uri: this.#directUri(), lastRoute: true, toward });
    if (outcome.answered) {
      await this.#bridge(outcome.dialog, route);
      return;
    }
    if (this.#cancelled) return;
    if (outcome.limited) return this.#refuseOverTrunkLimit(outcome.limited);
    const toCaller = redirectToCaller(outcome, this.#deps.config.calls.redirectPolicy) ?? {
      ...callerFailure(outcome.status, outcome.reason),
      headers: [],
    };
    this.#call.reject(toCaller.status, { reason: toCaller.reason, headers: toCaller.headers });
    this.#finish({ reason: 'rejected', detail: `direct_leg_${outcome.status}`, status: toCaller.status });
  }

  /** The trunk's limit held the INVITE back (never sent): 503 now; another route would need the same trunk. */
  #refuseOverTrunkLimit(limit: TrunkLimit): void {
    this.#endSession('error', `trunk_${limit}_limit`);
    this.#call.reject(503, { reason: 'Service Unavailable', headers: [['Retry-After', '1']] });
    this.#finish({ reason: 'rejected', detail: `trunk_${limit}_limit`, status: 503 });
  }

  /** The Telnyx trunk the rules chose (`trunk_out`); routing refused any name the config does not define. */
  get #trunk(): TelnyxTrunk {
    return this.#deps.trunks.trunk(this.#decision.trunkOut ?? DEFAULT_TRUNK_NAME);
  }

  /** The untranslated destination: Telnyx for a call from the PBX (outbound), the PBX for a call from Telnyx (inbound). */
  #directUri(): string {
    if (this.#deps.direction !== 'inbound') return trunkUri(this.#trunk, 'direct', this.#numbers());
    // The PBX gets the numbers as they came: a Telnyx trunk's number format is for Telnyx.
    const { pbxUriTemplate } = this.#deps.config.calls;
    return fillUriTemplate(pbxUriTemplate, { domain: this.#trunk.sipDomain, ...this.#numbers() });
  }

  #numbers(): CallNumbers {
    return { called: this.#decision.calledNumber ?? this.#call.calledUser, calling: this.#call.callingUser };
  }

  /** The PBX's INVITE had no SDP (Cisco CUCM/CUBE's default): Telnyx's 200 brings the offer, the PBX's ACK the answer. */
  get #delayedOffer(): boolean {
    return this.#call.body.length === 0;
  }

  /** One leg toward Telnyx (redirects followed per REDIRECT_POLICY); its outcome. */
  #leg(leg: LegOptions): Promise<LegOutcome> {
    return dialLeg(
      {
        engine: this.#engine,
        call: this.#call,
        config: this.#deps.config,
        trunk: this.#trunk,
        limits: this.#deps.trunks,
        log: this.#log,
        cancelled: () => this.#cancelled,
        over: () => this.#cancelled || this.#finished,
        attempt: (uri, pending) => {
          this.#currentLeg = pending;
          if (!pending) return;
          this.#telnyxUri = uri;
          this.#deps.hooks?.update?.(this.#call.callId, { telnyxUri: uri, route: this.#route });
        },
      },
      leg,
    );
  }

  async #bridge(telnyx: Dialog, route: CallRoute): Promise<void> {
    this.#route = route;
    this.#telnyxDialog = telnyx;
    // Register before awaiting the PBX's ACK: a BYE from Telnyx in that window must still end the call.
    telnyx.onEnd((end) => this.#onLegEnded('telnyx', end));
    const early = holdEarlyRequests(telnyx);
    if (this.#cancelled) {
      // CANCEL crossed the 200: the engine already answered 487 to the PBX.
      early.reject();
      void telnyx.bye({ headers: [['Reason', 'SIP;cause=487;text="Caller cancelled"']] });
      return;
    }
    const timers = sessionTimerAnswer(telnyx.remoteHeaders ?? []);
    const pbx = await this.#answerPbx(telnyx, timers.headers, early);
    if (!pbx) return;
    if (this.#delayedOffer && !this.#relayAnswer(pbx, telnyx)) return;
    const armSessionTimer = this.#armSessionTimer(timers.intervalSec);
    const relay: RelayContext = {
      log: this.#log,
      referPolicy: this.#deps.config.calls.referPolicy,
      onRefresh: armSessionTimer,
      onNoAnswer: () => this.hangUpBoth('no_sdp_answer'),
    };
    bridgeInDialogRequests(pbx, telnyx, relay);
    early.flush(pbx, relay);
    const maxSec = this.#deps.config.calls.maxCallDurationSec;
    if (maxSec > 0) {
      this.#maxDurationTimer = setTimeout(() => this.hangUpBoth('max_call_duration'), maxSec * 1000);
      this.#maxDurationTimer.unref();
    }
    this.#log.debug({ route }, 'call answered and bridged'); // sessionId, when there is one, is bound to #log
  }

  /** 200 to the PBX with Telnyx's SDP; the confirmed PBX dialog, or undefined when the call ended meanwhile. */
  async #answerPbx(
    telnyx: Dialog,
    timerHeaders: HeaderList,
    early: ReturnType<typeof holdEarlyRequests>,
  ): Promise<Dialog | undefined> {
    let pbx: Dialog;
    try {
      pbx = await this.#call.answer({
        body: telnyx.remoteBody,
        contentType: telnyx.remoteContentType,
        headers: [...timerHeaders, ...this.#sessionIdHeader()],
      });
    } catch (err) {
      this.#log.warn({ err }, 'PBX leg could not be confirmed');
      early.reject();
      void telnyx.bye({ headers: [['Reason', 'SIP;cause=408;text="No ACK from caller"']] });
      this.#finish({ reason: 'error', detail: 'pbx_no_ack', status: 408 });
      return undefined;
    }
    this.#pbxDialog = pbx;
    this.#answeredAt = Date.now();
    this.#deps.hooks?.update?.(this.#call.callId, { answerAt: this.#answeredAt, route: this.#route });
    pbx.onEnd((end) => this.#onLegEnded('pbx', end));
    if (pbx.ended && !this.#finished) {
      // The PBX's BYE overtook its ACK: the dialog ended before we could subscribe (the embedded engine never calls
      // a late onEnd handler), so treat it as the PBX hanging up now.
      early.reject();
      this.#onLegEnded('pbx', { by: 'remote', headers: [] });
      return undefined;
    }
    if (this.#finished || telnyx.ended) {
      early.reject();
      void pbx.bye();
      return undefined;
    }
    return pbx;
  }

  /**
   * Delayed offer (the PBX's INVITE had no SDP): Telnyx's 200 carried the offer, the PBX's ACK carries the answer,
   * and only now can Telnyx's 200 be ACKed, with it. No answer: no media is possible, so hang up rather than leave
   * a silent call. False when the call was hung up.
   */
  #relayAnswer(pbx: Dialog, telnyx: Dialog): boolean {
    const answer = pbx.ackBody;
    if (!answer.body?.length) {
      this.#log.error('delayed offer: the PBX ACK carried no SDP answer; hanging up both legs (no media possible)');
      this.hangUpBoth('no_sdp_answer'); // BYE on the Telnyx leg sends its held-back ACK first
      return false;
    }
    telnyx.ack(answer);
    this.#log.debug('delayed offer: the PBX answer relayed to Telnyx in the ACK'); // info: the summary only
    return true;
  }

  /** RFC 4028: the watchdog for the interval in force; each refresh's 2xx renegotiates it (none: stop, §7.2). */
  #armSessionTimer(initialSec: number | undefined): (refreshAnswer?: HeaderList) => void {
    let sessionTimer = initialSec;
    const arm = (refreshAnswer?: HeaderList): void => {
      if (refreshAnswer) sessionTimer = sessionTimerAnswer(refreshAnswer).intervalSec;
      clearTimeout(this.#sessionTimerWatchdog);
      if (!sessionTimer || this.#finished) return;
      // No refresh within the interval: both ends lost each other (RFC 4028 §10); a BYE must have been lost.
      this.#sessionTimerWatchdog = setTimeout(() => this.hangUpBoth('session_timer_expired'), sessionTimer * 1000);
      this.#sessionTimerWatchdog.unref();
    };
    arm();
    return arm;
  }

  /** The PBX learns the Kallglot session of a translated call (its CDRs can link to the transcript). */
  #sessionIdHeader(): HeaderList {
    return this.#session && this.#route === 'translated' ? [['X-Kallglot-Session-Id', this.#session.id]] : [];
  }

  #onLegEnded(side: 'pbx' | 'telnyx', end: DialogEnd): void {
    const other = side === 'pbx' ? this.#telnyxDialog : this.#pbxDialog;
    if (end.by === 'remote' && other && !other.ended) void other.bye({ headers: passThroughEndHeaders(end.headers) });
    if (end.by === 'local') return; // we initiated it; finish() already ran
    // `pbx` is the caller's leg. From the PBX the caller is the agent; from Telnyx (inbound) it is the customer, and
    // the callee's leg goes to the PBX's agent.
    const callerIsCustomer = this.#deps.direction === 'inbound';
    const byCaller = side === 'pbx';
    this.#finish({
      reason: byCaller === callerIsCustomer ? 'customer_hangup' : 'agent_hangup',
      detail: callerIsCustomer ? `bye_from_${byCaller ? 'caller' : 'callee'}` : `bye_from_${side}`,
      status: 200,
    });
  }

  /** Gateway-initiated end of an answered call (max duration, drain timeout, shutdown). */
  hangUpBoth(why: GatewayHangup): void {
    const reason: EndReason = GATEWAY_HANGUPS[why];
    // finish() unlinks the dialogs and the pending leg: take them first, or no BYE/CANCEL would ever be sent.
    const [pbxDialog, telnyxDialog, currentLeg] = [this.#pbxDialog, this.#telnyxDialog, this.#currentLeg];
    this.#finish({ reason, detail: why, status: 200 });
    void pbxDialog?.bye({ headers: [['Reason', `SIP;cause=200;text="${why}"`]] });
    void telnyxDialog?.bye({ headers: [['Reason', `SIP;cause=200;text="${why}"`]] });
    if (!this.#answeredAt) {
      currentLeg?.cancel();
      this.#call.reject(503, { reason: 'Service Unavailable' });
    }
  }

  #onCallerCancel(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    this.#log.debug('caller cancelled'); // the summary says it: endReason caller_cancelled, sipStatus 487
    // The create request (if in flight) is not aborted: Kallglot might still create the session and we would never
    // learn its id. It finishes within its deadline and translated() then ends the session it got.
    this.#currentLeg?.cancel();
    this.#finish({ reason: 'agent_hangup', detail: 'caller_cancelled', status: 487 });
  }

  #endSession(reason: EndReason, detail: string): void {
    if (!this.#session) return;
    this.#deps.sessionEnder.end(this.#session.id, reason, detail, this.#call.callId);
  }

  #finish(end: { reason: EndReason | 'rejected'; detail: string; status: number }): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#maxDurationTimer);
    clearTimeout(this.#sessionTimerWatchdog);
    this.#endSession(end.reason === 'rejected' ? 'error' : end.reason, end.detail);
    const summary: CallSummary = {
      callId: this.#call.callId,
      route: this.#route,
      fallbackReason: this.#fallbackReason,
      sessionId: this.#session?.id,
      telnyxUri: this.#telnyxUri,
      rule: this.#decision.ruleName,
      trunkOut: this.#decision.trunkOut ?? DEFAULT_TRUNK_NAME,
      setupMs: this.#answeredAt ? this.#answeredAt - this.#startedAt : undefined,
      durationMs: this.#answeredAt ? Date.now() - this.#answeredAt : 0,
      endReason: end.detail,
      sipStatus: end.status,
    };
    // Unlink both halves so nothing keeps the other alive (peers' classic B2BUA leak).
    this.#pbxDialog = undefined;
    this.#telnyxDialog = undefined;
    this.#currentLeg = undefined;
    this.#deps.onFinished(summary);
  }
}
