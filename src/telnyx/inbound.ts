/**
 * Calls that arrive on a Telnyx Call Control application (POST /webhooks/telnyx/call-control), the Kallglot guide's
 * inbound flow: on call.initiated (direction incoming) the routing rules decide on from/to, the Kallglot session is
 * created (routing.phone_number = to, through the one request builder) and the call is answered with client_state
 * `{ session_id, call_id, stream: 'answer', direction: 'inbound', record? }`, by which every later webhook of the call
 * finds its session. The webhook is acknowledged at once and the Kallglot and Telnyx requests run after the reply
 * (Telnyx retries slow webhooks), as tasks `idle()` waits for.
 *
 * The stream starts on call.answered (startStreaming), not with the answer: the answer command (telnyx v7
 * ActionAnswerParams) takes stream_url and stream_track but no stream_auth_token and no custom parameters, so the
 * session's stream token could only ride in the URL's query string, where URLs get logged. startStreaming carries it
 * as stream_auth_token and as the `token`/`session_id` parameters the TeXML `<Stream>` sends, and it is the path
 * outbound calls take with TELNYX_STREAM_ON_ANSWER. The cost is one more request once the call is answered.
 *
 * Failure paths, as on the TeXML path (voice.ts):
 *  - a bypass rule: transfer to DIRECT_NUMBER, no session, no answer;
 *  - Kallglot fails: answer, speak TELNYX_FALLBACK_NOTICE when set (the transfer then waits for call.speak.ended),
 *    transfer to DIRECT_NUMBER; with RATE_LIMIT_POLICY=busy a rate limit rejects the call USER_BUSY instead;
 *  - a command failing once the session exists (answer, startStreaming) ends the session (reason error) and the call
 *    falls back as above;
 *  - without DIRECT_NUMBER an untranslated call is rejected (hung up once answered): its called number is this
 *    application's own, so transferring there would bring it straight back.
 * A failed startRecording leaves the translated call up and marks the recording failed: losing the translation of a
 * live call over its recording would be the worse outcome.
 *
 * Races (Telnyx redelivers and reorders webhooks; the setup runs after the reply):
 *  - call.initiated redelivered, or sent again under another event id: the event id is claimed in the registry and
 *    the call row is keyed by call_control_id; either already taken → acknowledged, nothing created or sent.
 *  - call.hangup processed before call.initiated: the hangup is kept as an event of the call_control_id; initiated
 *    finds it and records the call as ended, with no session and no command.
 *  - call.hangup while the session is being created: the row ends without a session (events.ts); when the create
 *    returns, the setup sees the row ended and ends the session instead of answering.
 *  - call.hangup once the session is on the row: events.ts ends it from the row; a failing answer ends it again,
 *    which SessionEnder ignores (one end per session).
 *  - call.answered redelivered: events.ts claims it by event id, and startStreaming's command_id is per session.
 */
import type Telnyx from 'telnyx';
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { partyUri, sessionRequest } from '../sessions/request.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import { onSessionFailure } from '../sessions/failure-policy.ts';
import type { KallglotSession, KallglotStream } from '../kallglot/types.ts';
import type { RegistryPort } from '../registry/port.ts';
import { matchRoute } from '../routing/match.ts';
import type { RouteDecision, RuleSet, TranslatedDecision } from '../routing/types.ts';
import { isObject } from '../json.ts';
import { CallCommands, describeTelnyxError } from './call-commands.ts';
import { type EventResult, eventData, eventDedupeKey } from './events.ts';
import type { KallglotSessions } from './outbound.ts';
import { type CallControlEvent, type ClientState, encodeClientState, str, userPart } from './payload.ts';
import { recordRecording } from './recording.ts';

export const CALL_CONTROL_PATH = '/webhooks/telnyx/call-control';

export interface InboundDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: RegistryPort;
  kallglot: KallglotSessions;
  sessionEnder: SessionEnder;
  rules: () => RuleSet;
  /** Undefined when TELNYX_API_KEY is not set: incoming calls cannot be answered and are left to ring out. */
  telnyx: Telnyx | undefined;
}

interface InboundCall {
  callControlId: string;
  from: string;
  to: string;
  decision: RouteDecision;
  log: Logger;
}

/** Stream details kept between answer and call.answered; the token is useless after ~5 minutes anyway. */
const KEEP_MS = 10 * 60_000;

export class TelnyxInbound {
  readonly #d: InboundDeps;
  readonly #commands: CallCommands | undefined;
  /** By call_control_id: the stream to start on call.answered, the language of a fallback notice. */
  readonly #calls = new Map<string, { stream?: KallglotStream; language?: string; at: number }>();
  readonly #tasks = new Set<Promise<void>>();

  constructor(deps: InboundDeps) {
    this.#d = deps;
    this.#commands = deps.telnyx ? new CallCommands(deps.telnyx) : undefined;
  }

  /** call.initiated, direction incoming: claims the call in the registry before the reply, sets it up after. */
  async initiated(ev: CallControlEvent): Promise<EventResult> {
    const { registry, logger } = this.#d;
    const handled = ev.eventType;
    const callId = ev.callControlId;
    if (!callId) return { handled, ignored: 'no_call_control_id' };
    if (!(await registry.addEvent(callId, handled, eventData(ev), eventDedupeKey(ev, callId))))
      return { handled, callId, duplicate: true };
    const from = str(ev.payload.from) ?? '';
    const to = str(ev.payload.to) ?? '';
    // Call Control carries no PBX source address or SIP headers, so rules on `source`/`header` never match here.
    const decision = matchRoute(this.#d.rules(), {
      called: userPart(to),
      calling: userPart(from),
      sourceIp: '',
      direction: 'inbound',
      headers: () => undefined,
    });
    if (!(await registry.callStarted({ callId, kind: 'call_control', from, to, rule: decision.ruleName })))
      return { handled, callId, duplicate: true };
    const log = logger.child({ callControlId: callId });
    const early = hangupCause(await registry.events(callId));
    if (early !== undefined) {
      await registry.callEnded(callId, { reason: early });
      log.info({ cause: early }, 'call hung up before its call.initiated was processed: nothing to set up');
      return { handled, callId, ignored: 'already_hung_up' };
    }
    if (!this.#commands) {
      await registry.update(callId, { route: 'unanswered', fallbackReason: 'telnyx_not_configured' });
      log.error('incoming Call Control call, but TELNYX_API_KEY is not set: it cannot be answered');
      return { handled, callId, ignored: 'telnyx_not_configured' };
    }
    this.#track(this.#setup({ callControlId: callId, from, to, decision, log }, this.#commands));
    return { handled, callId };
  }

  /** call.answered of a call answered here (client_state direction inbound): start the stream, then the recording. */
  answered(callControlId: string, sessionId: string, state: ClientState): void {
    const cmd = this.#commands;
    if (cmd) this.#track(this.#media(callControlId, sessionId, state, cmd));
  }

  /** call.speak.ended: the fallback notice has been spoken, now transfer. */
  noticeEnded(callControlId: string, state: ClientState): void {
    const cmd = this.#commands;
    if (state.next !== 'transfer' || !cmd) return;
    this.#track(this.#over(callControlId).then((over) => (over ? undefined : this.#transfer(callControlId, cmd))));
  }

  forget(callControlId: string): void {
    this.#calls.delete(callControlId);
  }

  /** Wait for background work (setups, stream starts, transfers) to settle; for shutdown and tests. */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #setup(call: InboundCall, cmd: CallCommands): Promise<void> {
    const { decision, callControlId, log } = call;
    this.#remember(callControlId, { language: decision.greeting?.language });
    if (decision.mode === 'bypass') {
      await this.#d.registry.update(callControlId, { route: 'bypass' });
      log.info({ rule: decision.ruleName }, 'call control call bypasses translation');
      await this.#untranslated(callControlId, cmd, { answered: false, fallback: false });
      return;
    }
    let session: KallglotSession;
    try {
      session = await this.#createSession(decision, call);
    } catch (err) {
      await this.#sessionFailed(call, cmd, err);
      return;
    }
    await this.#connect(call, cmd, session);
  }

  #createSession(decision: TranslatedDecision, call: InboundCall): Promise<KallglotSession> {
    const { config } = this.#d;
    // The other party, as on the TeXML path: whom the call goes to untranslated (DIRECT_NUMBER), else the called number.
    const otherPartyUri = partyUri(config.telnyx.directNumber || call.to, config.telnyx.sipDomain);
    const facts = {
      channel: 'call_control_inbound' as const,
      callControlId: call.callControlId,
      from: call.from,
      to: call.to,
      otherPartyUri,
    };
    return this.#d.kallglot.createSession(sessionRequest(decision, facts, config.kallglot.requestStyle));
  }

  async #sessionFailed(call: InboundCall, cmd: CallCommands, err: unknown): Promise<void> {
    const { registry, config } = this.#d;
    const id = call.callControlId;
    const next = onSessionFailure(err, config.calls.rateLimitPolicy);
    const fallbackReason = `kallglot_${next.reason}`;
    call.log.warn({ err, action: next.action }, 'Kallglot session could not be created for a call control call');
    if (await this.#over(id)) return;
    if (next.action === 'busy') {
      await registry.update(id, { route: 'rejected', fallbackReason });
      if (await this.#try(id, 'reject', () => cmd.reject(id, 'USER_BUSY')))
        await registry.callEnded(id, { reason: 'rejected', route: 'rejected', fallbackReason });
      return;
    }
    await registry.update(id, { route: 'fallback', fallbackReason });
    await this.#untranslated(id, cmd, { answered: false, fallback: true });
  }

  async #connect(call: InboundCall, cmd: CallCommands, session: KallglotSession): Promise<void> {
    const { registry, sessionEnder } = this.#d;
    const id = call.callControlId;
    const stream = session.stream;
    if (!stream) {
      // A session we cannot connect to is useless and billed: end it and treat the call like any Kallglot failure.
      sessionEnder.end(session.id, 'error', 'session_without_stream', id);
      await registry.update(id, { sessionId: session.id, route: 'fallback', fallbackReason: 'kallglot_no_stream' });
      if (!(await this.#over(id))) await this.#untranslated(id, cmd, { answered: false, fallback: true });
      return;
    }
    // On the row before the answer: a hangup from here on finds the session there (events.ts) and ends it.
    await registry.update(id, { sessionId: session.id, route: 'translated' });
    if (await this.#over(id)) {
      sessionEnder.end(session.id, 'completed', 'caller_hung_up_during_setup', id);
      return;
    }
    this.#remember(id, { stream });
    const state: ClientState = {
      session_id: session.id,
      call_id: id,
      stream: 'answer',
      direction: 'inbound',
      ...(call.decision.recording ? { record: true as const } : {}),
    };
    try {
      await cmd.answer(id, encodeClientState(state), 'answer');
    } catch (err) {
      await this.#failedAfterSession(id, session.id, 'telnyx_answer_failed', err, cmd, false);
      return;
    }
    call.log.info(
      { sessionId: session.id, rule: call.decision.ruleName },
      'call control call answered for translation',
    );
  }

  async #media(id: string, sessionId: string, state: ClientState, cmd: CallCommands): Promise<void> {
    const { registry, kallglot } = this.#d;
    // A call that fell back after its answer was sent (the answer's response was lost) has no session to stream to.
    if ((await registry.get(id))?.route === 'fallback') return;
    try {
      // After a restart the stream details are gone from memory: ask Kallglot again.
      const stream = this.#calls.get(id)?.stream ?? (await kallglot.getSession(sessionId)).stream;
      if (!stream) throw new Error('Kallglot session has no stream');
      await cmd.startStreaming(id, sessionId, stream);
    } catch (err) {
      await this.#failedAfterSession(id, sessionId, 'stream_start_failed', err, cmd, true);
      return;
    }
    await registry.addEvent(id, 'stream_start_requested', null, `stream-start:${id}`);
    this.#d.logger.info({ callControlId: id, sessionId }, 'call control call streaming to Kallglot');
    if (!state.record) return;
    if (await this.#try(id, 'recording_start', () => cmd.startRecording(id))) {
      await registry.addEvent(id, 'recording_start_requested', null, `recording-start:${id}`);
      await recordRecording(registry, id, undefined, 'requested');
    } else {
      await recordRecording(registry, id, undefined, 'failed');
    }
  }

  async #failedAfterSession(
    id: string,
    sessionId: string,
    detail: string,
    err: unknown,
    cmd: CallCommands,
    answered: boolean,
  ): Promise<void> {
    const { registry, sessionEnder, logger } = this.#d;
    logger.error({ err: describeTelnyxError(err), callControlId: id, sessionId }, `${detail}: ending the session`);
    await registry.addEvent(id, detail, { message: err instanceof Error ? err.message : String(err) });
    sessionEnder.end(sessionId, 'error', detail, id);
    if (await this.#over(id)) return;
    await registry.update(id, { route: 'fallback', fallbackReason: detail });
    await this.#untranslated(id, cmd, { answered, fallback: true });
  }

  /**
   * An untranslated call goes to DIRECT_NUMBER: at once for a bypass rule; after a failure the call is answered first
   * and told (TELNYX_FALLBACK_NOTICE) when a notice is configured. Without DIRECT_NUMBER it is rejected, or hung up
   * once answered.
   */
  async #untranslated(id: string, cmd: CallCommands, o: { answered: boolean; fallback: boolean }): Promise<void> {
    const { config, registry } = this.#d;
    if (!config.telnyx.directNumber) {
      if (o.answered) await this.#try(id, 'hangup', () => cmd.hangup(id));
      else if (await this.#try(id, 'reject', () => cmd.reject(id, 'CALL_REJECTED')))
        await registry.callEnded(id, { reason: 'rejected' });
      return;
    }
    if (o.fallback && !o.answered) {
      // Failing to answer does not stop the transfer: Telnyx transfers unanswered calls too.
      const state = encodeClientState({ call_id: id, direction: 'inbound' });
      await this.#try(id, 'answer', () => cmd.answer(id, state, 'fallback-answer'));
    }
    const notice = o.fallback ? config.telnyx.fallbackNotice : '';
    if (notice) {
      const state = encodeClientState({ call_id: id, direction: 'inbound', next: 'transfer' });
      const language = this.#calls.get(id)?.language;
      // The transfer follows call.speak.ended (noticeEnded); if the notice cannot be spoken, transfer now.
      if (await this.#try(id, 'speak', () => cmd.speak(id, notice, language, state))) return;
    }
    await this.#transfer(id, cmd);
  }

  async #transfer(id: string, cmd: CallCommands): Promise<void> {
    const to = this.#d.config.telnyx.directNumber;
    if (await this.#try(id, 'transfer', () => cmd.transfer(id, to))) {
      await this.#d.registry.addEvent(id, 'transfer_requested', { to }, `transfer:${id}`);
      return;
    }
    // A call with nowhere to go would sit in silence until the caller gives up.
    await this.#try(id, 'hangup', () => cmd.hangup(id));
  }

  /** Runs a Telnyx command; a failure is logged and kept as a call event, and reported as false. */
  async #try(id: string, what: string, command: () => Promise<void>): Promise<boolean> {
    try {
      await command();
      return true;
    } catch (err) {
      this.#d.logger.error({ err: describeTelnyxError(err), callControlId: id }, `Telnyx ${what} failed`);
      const message = err instanceof Error ? err.message : String(err);
      await this.#d.registry.addEvent(id, `${what}_failed`, { message });
      return false;
    }
  }

  /** The call is over (its hangup has been processed, or it was rejected): no more commands for it. */
  async #over(id: string): Promise<boolean> {
    const { registry } = this.#d;
    return (await registry.get(id))?.state === 'ended' || hangupCause(await registry.events(id)) !== undefined;
  }

  #remember(id: string, patch: { stream?: KallglotStream; language?: string | undefined }): void {
    const now = Date.now();
    for (const [key, c] of this.#calls) if (now - c.at > KEEP_MS) this.#calls.delete(key);
    const entry = this.#calls.get(id) ?? { at: now };
    if (patch.stream) entry.stream = patch.stream;
    if (patch.language) entry.language = patch.language;
    this.#calls.set(id, entry);
  }

  #track(work: Promise<void>): void {
    const task: Promise<void> = work
      .catch((err: unknown) => this.#d.logger.error({ err }, 'inbound call control task failed'))
      .finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }
}

/** The hangup_cause of a call.hangup already stored for the call (a hangup without a cause: 'hangup'). */
function hangupCause(events: Array<{ type: string; data: unknown }>): string | undefined {
  const hangup = events.find((e) => e.type === 'call.hangup');
  if (!hangup) return undefined;
  return isObject(hangup.data) && typeof hangup.data.hangup_cause === 'string' ? hangup.data.hangup_cause : 'hangup';
}
