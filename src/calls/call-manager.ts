/**
 * Entry point of the call logic: every new INVITE from the engine goes through admission, then routing, then
 * gets its own CallSession. Tracks active calls for health, drain and shutdown.
 */
import type { GatewayConfig } from '../config/load.ts';
import { allTrunks } from '../config/trunks.ts';
import type { Logger } from '../logger.ts';
import { matchRoute } from '../routing/match.ts';
import { identifyTrunk } from '../routing/trunk.ts';
import type { RouteDecision, RuleSet } from '../routing/types.ts';
import type { InboundCall, InviteScreenRequest, SipEngine, StatelessRefusal } from '../sip/port.ts';
import { type Admission, type AdmissionResult, isOverloadRefusal, type OverloadRefusal } from './admission.ts';
import { RefusalLog } from './overload.ts';
import type { PbxAuthenticator } from './pbx-auth.ts';
import { unsupportedRequired } from './policy.ts';
import { CallSession } from './call-session.ts';
import type { CallDirection, DirectionClassifier } from './direction.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { CallRecorder, CallSummary, GatewayHangup } from './types.ts';
import type { SessionCreator } from '../sessions/request.ts';
import type { HeaderList } from '../sip/port.ts';
import { TrunkLimits } from './trunk-limits.ts';

export interface CallManagerDeps {
  config: GatewayConfig;
  logger: Logger;
  engine: SipEngine;
  kallglot: SessionCreator;
  sessionEnder: SessionEnder;
  admission: Admission;
  rules: () => RuleSet;
  recorder?: CallRecorder;
  /** When set, INVITEs must carry valid digest credentials (after the source allowlist). */
  pbxAuth?: PbxAuthenticator;
  onSummary?: (summary: CallSummary) => void;
  /** An INVITE refused at admission (metrics by reason); its summary follows through onSummary as route rejected. */
  onAdmissionRejected?: (why: Extract<AdmissionResult, { admitted: false }>['why']) => void;
  onSessionCreated?: (callId: string, sessionId: string) => void;
  /** Tells inbound calls (from Telnyx's addresses) from outbound ones (from the PBX); absent: every call is outbound. */
  directions?: DirectionClassifier;
  /** The Telnyx trunks and their CPS/concurrency limits (the daemon shares them with /metrics); absent: from config. */
  trunks?: TrunkLimits;
}

function retryAfter(verdict: Extract<AdmissionResult, { admitted: false }>): HeaderList {
  return verdict.retryAfterSec ? [['Retry-After', String(verdict.retryAfterSec)]] : [];
}

export class CallManager {
  readonly #deps: CallManagerDeps;
  readonly #active = new Set<CallSession>();
  #idleWaiters: Array<() => void> = [];
  readonly #overloadLog: RefusalLog;
  readonly #trunks: TrunkLimits;

  constructor(deps: CallManagerDeps) {
    this.#deps = deps;
    this.#trunks = deps.trunks ?? new TrunkLimits({ trunks: allTrunks(deps.config.telnyx) });
    this.#overloadLog = new RefusalLog({
      write: (refused) =>
        deps.logger.warn(
          { refused, inflightSetups: deps.admission.inflightSetups },
          'overloaded: refusing new calls with 503 (counts since the previous line)',
        ),
    });
    deps.engine.onInvite((call) => this.handle(call));
    deps.engine.screenInvites?.((invite) => this.#screen(invite));
  }

  get activeCalls(): number {
    return this.#active.size;
  }

  handle(call: InboundCall): void {
    const { admission, logger, pbxAuth } = this.#deps;
    const unsupported = unsupportedRequired(call.headers());
    if (unsupported.length) {
      // Before any work (no session, no registry row): the caller retries without the extension or gives up.
      call.reject(420, { reason: 'Bad Extension', headers: [['Unsupported', unsupported.join(', ')]] });
      logger.info({ callId: call.callId, unsupported }, 'INVITE requires an unsupported extension: 420');
      return;
    }
    const direction = this.#deps.directions?.classify(call.source.address) ?? 'outbound';
    // Digest is the PBX's duty; Telnyx's signalling is allowlisted by address (it cannot answer our challenge).
    if (pbxAuth && direction === 'outbound' && admission.sourceAllowed(call.source.address)) {
      const auth = pbxAuth.check(call);
      if (!auth.ok) {
        // A challenge is the normal first step of an authenticated call, not a call of its own: no registry row.
        call.reject(auth.status, { reason: 'Proxy Authentication Required', headers: auth.headers });
        logger.info({ callId: call.callId, source: call.source.address, why: auth.why }, 'INVITE challenged');
        return;
      }
    }
    const verdict = admission.admit(call.source.address);
    if (!verdict.admitted) {
      this.#refuse(call, verdict);
      return;
    }
    const decision = this.#route(call, direction);
    this.#record(call, decision);
    this.#startSession(call, decision, direction);
  }

  #startSession(call: InboundCall, decision: RouteDecision, direction: CallDirection): void {
    const { admission, logger } = this.#deps;
    const recorder = this.#deps.recorder;
    let settingUp = true;
    const setupEnded = (): void => {
      if (settingUp) admission.setupEnded();
      settingUp = false;
    };
    const session = new CallSession(call, decision, {
      config: this.#deps.config,
      logger,
      engine: this.#deps.engine,
      kallglot: this.#deps.kallglot,
      sessionEnder: this.#deps.sessionEnder,
      trunks: this.#trunks,
      direction,
      hooks: {
        sessionCreated: (callId, sessionId) => {
          recorder?.update(callId, { sessionId });
          // Durable before the outbound INVITE: a crash now must not leak the session (call-session waits for it).
          const committed = recorder?.commitNow?.();
          this.#deps.onSessionCreated?.(callId, sessionId);
          return committed;
        },
        update: (callId, patch) => {
          if (patch.answerAt !== undefined) setupEnded();
          recorder?.update(callId, patch);
        },
      },
      onFinished: (summary) => {
        setupEnded();
        // At info a call is this one line, when it ends: what happened, and who called whom from where.
        const to = decision.calledNumber ?? call.calledUser;
        logger.info({ ...summary, from: call.callingUser, to, source: call.source.address }, 'call summary');
        if (this.#active.delete(session)) admission.release(call.source.address);
        recorder?.callEnded(summary.callId, {
          reason: summary.endReason,
          sipStatus: summary.sipStatus,
          route: summary.route,
          fallbackReason: summary.fallbackReason,
          sessionId: summary.sessionId,
          telnyxUri: summary.telnyxUri,
          rule: summary.rule,
        });
        this.#deps.onSummary?.(summary);
        if (this.#active.size === 0) for (const w of this.#idleWaiters.splice(0)) w();
      },
    });
    this.#active.add(session);
    void session.run();
  }

  /** The trunk the INVITE came on, then the routing rules' decision for it (logged as the call's first line). */
  #route(call: InboundCall, direction: CallDirection): RouteDecision {
    const rules = this.#deps.rules(); // once: trunks and rules from the same file version
    const headers = (name: string) => call.header(name);
    const sourceIp = call.source.address;
    const trunk = identifyTrunk(rules, { sourceIp, requestUri: call.requestUri, from: call.from, headers });
    const decision = matchRoute(rules, {
      called: call.calledUser,
      calling: call.callingUser,
      sourceIp,
      direction,
      ...(trunk !== undefined && { trunk }),
      headers,
    });
    // At debug: at info a call is one line, its summary (which names the call's parties and source too).
    this.#deps.logger.debug(
      {
        callId: call.callId,
        from: call.callingUser,
        to: decision.calledNumber ?? call.calledUser,
        ...(decision.dialCode !== undefined && { dialled: call.calledUser, dialCode: decision.dialCode }),
        source: sourceIp,
        direction,
        ...(trunk !== undefined && { trunk }),
        rule: decision.ruleName,
        mode: decision.mode,
        ...(decision.trunkOut !== undefined && { trunkOut: decision.trunkOut }),
      },
      'new call',
    );
    return decision;
  }

  /**
   * The engine's stateless screen (SipEngine.screenInvites): only the overload refusals, which must cost next to
   * nothing since they come by the hundred a second exactly when the loop has no time to spare. The other refusals
   * (420, 407, 403, draining and the static concurrency/rate 503s) stay in handle(): rare, logged one by one and
   * recorded in the registry, they are worth a transaction that retransmits them reliably.
   */
  #screen(invite: InviteScreenRequest): StatelessRefusal | undefined {
    const verdict = this.#deps.admission.overloadRefusal(invite.source.address);
    if (!verdict) return undefined;
    this.#overloaded(invite.callId, verdict);
    return { status: verdict.status, reason: verdict.reason, headers: retryAfter(verdict) };
  }

  /** Overloaded: no log line and no registry row per INVITE (RefusalLog); metrics still count each one. */
  #overloaded(callId: string, verdict: OverloadRefusal): void {
    this.#deps.onAdmissionRejected?.(verdict.why);
    this.#overloadLog.note(verdict.why);
    const route = 'rejected' as const;
    this.#deps.onSummary?.({ callId, route, rule: '', durationMs: 0, endReason: verdict.why, sipStatus: 503 });
  }

  /** An INVITE admission turned away: answered at once, logged, and recorded as a rejected call. */
  #refuse(call: InboundCall, verdict: Extract<AdmissionResult, { admitted: false }>): void {
    const { logger } = this.#deps;
    call.reject(verdict.status, { reason: verdict.reason, headers: retryAfter(verdict) });
    // An engine without a screen (drachtio), or an overload that began between the screen and here.
    if (isOverloadRefusal(verdict)) {
      this.#overloaded(call.callId, verdict);
      return;
    }
    this.#deps.onAdmissionRejected?.(verdict.why);
    logger.warn(
      {
        callId: call.callId,
        source: call.source.address,
        why: verdict.why,
        status: verdict.status,
        userAgent: call.header('User-Agent'),
      },
      'INVITE refused at admission',
    );
    const summary: CallSummary = {
      callId: call.callId,
      route: 'rejected',
      rule: '',
      durationMs: 0,
      endReason: verdict.why,
      sipStatus: verdict.status,
    };
    logger.info(summary, 'call summary');
    this.#record(call, undefined);
    this.#deps.recorder?.callEnded(call.callId, {
      reason: verdict.why,
      sipStatus: verdict.status,
      route: 'rejected',
    });
    this.#deps.onSummary?.(summary);
  }

  /** The registry row of a new call; `decision` undefined when it was refused before routing. */
  #record(call: InboundCall, decision: RouteDecision | undefined): void {
    try {
      this.#deps.recorder?.callStarted({
        callId: call.callId,
        pbxSource: call.source.address,
        from: call.callingUser,
        // The number the call goes to: without the dial code the agent keyed in.
        to: decision?.calledNumber ?? call.calledUser,
        rule: decision?.ruleName,
      });
    } catch (err) {
      // The registry failing must not fail the call: log loudly, keep serving.
      this.#deps.logger.error({ err, callId: call.callId }, 'call registry write failed');
    }
  }

  /** Resolves when no call is active, or after timeoutMs (returns false then). */
  waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.#active.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.#idleWaiters.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  hangUpAll(why: GatewayHangup): void {
    for (const s of [...this.#active]) s.hangUpBoth(why);
  }
}
