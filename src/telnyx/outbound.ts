/**
 * Outbound translated calls through Telnyx Call Control (POST /calls, operator API): create the Kallglot session,
 * dial with the `telnyx` SDK (v7: `calls.dial`, `calls.actions.startStreaming`), and record the call under its
 * call_control_id. The call's webhooks come back to /webhooks/telnyx/outbound carrying our client_state
 * (`{ session_id, call_id, stream }`), which is how they are correlated — never by phone number.
 *
 * The media stream normally rides on the dial (`stream_url`, started by Telnyx on answer). With
 * TELNYX_STREAM_ON_ANSWER the dial carries no stream and it is started when call.answered arrives.
 */
import { randomUUID } from 'node:crypto';
import type Telnyx from 'telnyx';
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { partyUri, type SessionCreator, sessionRequest } from '../sessions/request.ts';
import type { TranslatedDecision } from '../routing/types.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import { isKallglotError, isRateLimited } from '../kallglot/errors.ts';
import type { KallglotSession, KallglotStream, SessionMode } from '../kallglot/types.ts';
import type { RegistryPort } from '../registry/port.ts';
import { canonicalLanguage } from '../routing/language.ts';
import type { HttpRequest, HttpResponse } from '../http/server.ts';
import { isObject, safeJson } from '../json.ts';
import { describeTelnyxError, streamingParams } from './call-commands.ts';
import { encodeClientState } from './payload.ts';
import type { ClientState } from './payload.ts';

export const OUTBOUND_WEBHOOK_PATH = '/webhooks/telnyx/outbound';

export interface KallglotSessions extends SessionCreator {
  getSession(id: string): Promise<KallglotSession>;
}

export interface OutboundDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: RegistryPort;
  kallglot: KallglotSessions;
  sessionEnder: SessionEnder;
  /** Undefined when TELNYX_API_KEY is not set: outbound calls are then refused with 503. */
  telnyx: Telnyx | undefined;
}

interface OutboundRequest {
  to: string;
  from: string;
  mode: 'bidirectional_translation' | 'assistive_translation';
  sourceLanguage?: string;
  targetLanguage?: string;
}

/** Stream details kept between dial and answer (stream-on-answer only); the token is useless after ~5 minutes. */
const STREAM_KEEP_MS = 10 * 60_000;
const NUMBER_OR_SIP = /^(\+[1-9]\d{5,14}|sips?:[^\s<>"]{3,250})$/;

export class TelnyxOutbound {
  readonly #d: OutboundDeps;
  readonly #streams = new Map<string, { stream: KallglotStream; at: number }>();
  readonly #tasks = new Set<Promise<void>>();

  constructor(deps: OutboundDeps) {
    this.#d = deps;
  }

  async start(req: HttpRequest): Promise<HttpResponse> {
    const { config } = this.#d;
    const telnyx = this.#d.telnyx;
    if (!telnyx || !config.telnyx.connectionId) {
      return {
        status: 503,
        body: { error: 'telnyx_not_configured', message: 'set TELNYX_API_KEY and TELNYX_CONNECTION_ID' },
      };
    }
    const input = parseOutbound(req.rawBody);
    if (typeof input === 'string') return { status: 400, body: { error: 'invalid_request', message: input } };
    const callRef = randomUUID();
    const log = this.#d.logger.child({ callRef, to: input.to });
    const created = await this.#createSession(input, callRef, log);
    if ('status' in created) return created;
    return this.#dial(telnyx, input, callRef, created, log);
  }

  /** The session for an outbound call, or the HTTP answer explaining why there is none. */
  async #createSession(
    input: OutboundRequest,
    callRef: string,
    log: Logger,
  ): Promise<{ session: KallglotSession; stream: KallglotStream } | HttpResponse> {
    const decision: TranslatedDecision = {
      ruleName: 'api',
      mode: input.mode,
      sourceLanguage: input.sourceLanguage,
      targetLanguage: input.targetLanguage,
      metadata: {},
      recording: false,
    };
    const { config } = this.#d;
    // The other party is the number (or SIP address) dialled; parseOutbound has made sure there is one.
    const otherPartyUri = partyUri(input.to, config.telnyx.sipDomain) ?? input.to;
    const call = { channel: 'call_control_outbound' as const, callRef, from: input.from, to: input.to, otherPartyUri };
    let session: KallglotSession;
    try {
      session = await this.#d.kallglot.createSession(sessionRequest(decision, call, config.kallglot.requestStyle));
    } catch (err) {
      log.warn({ err }, 'Kallglot session could not be created for an outbound call');
      const code = isKallglotError(err) ? err.code : 'kallglot_error';
      if (isRateLimited(err)) {
        const retry =
          isKallglotError(err) && err.retryAfterMs ? Math.max(1, Math.ceil(err.retryAfterMs / 1000)) : undefined;
        return {
          status: 429,
          body: { error: 'kallglot_rate_limited', code },
          ...(retry ? { headers: { 'retry-after': String(retry) } } : {}),
        };
      }
      return { status: 502, body: { error: 'kallglot_unavailable', code } };
    }
    if (!session.stream) {
      this.#d.sessionEnder.end(session.id, 'error', 'session_without_stream');
      return { status: 502, body: { error: 'kallglot_unavailable', code: 'no_stream' } };
    }
    return { session, stream: session.stream };
  }

  async #dial(
    telnyx: NonNullable<OutboundDeps['telnyx']>,
    input: OutboundRequest,
    callRef: string,
    { session, stream }: { session: KallglotSession; stream: KallglotStream },
    log: Logger,
  ): Promise<HttpResponse> {
    const { config, registry, sessionEnder } = this.#d;
    const onAnswer = config.telnyx.streamOnAnswer;
    const clientState = encodeClientState({
      session_id: session.id,
      call_id: callRef,
      stream: onAnswer ? 'answer' : 'dial',
    } satisfies ClientState);
    const params: Telnyx.CallDialParams = {
      connection_id: config.telnyx.connectionId,
      to: input.to,
      from: input.from,
      client_state: clientState,
      command_id: callRef,
    };
    const base = config.http.publicBaseUrl.replace(/\/+$/, '');
    // Without PUBLIC_BASE_URL the events go to the connection's own webhook URL (configure it to the same path).
    if (base) params.webhook_url = `${base}${OUTBOUND_WEBHOOK_PATH}`;
    if (onAnswer) {
      this.#remember(session.id, stream);
    } else {
      params.stream_url = stream.url;
      params.stream_track = 'both_tracks';
      params.stream_auth_token = stream.token;
    }

    let callControlId: string | undefined;
    try {
      // No SDK retries: a dial that timed out may still have placed the call, and a retry would place a second one.
      const res = await telnyx.calls.dial(params, { maxRetries: 0 });
      callControlId = res.data?.call_control_id;
      if (!callControlId) throw new Error('Telnyx dial response has no call_control_id');
    } catch (err) {
      log.error({ err: describeTelnyxError(err), sessionId: session.id }, 'Telnyx dial failed');
      this.#streams.delete(session.id);
      sessionEnder.end(session.id, 'error', 'telnyx_dial_failed');
      return { status: 502, body: { error: 'dial_failed', session_id: session.id } };
    }

    await registry.callStarted({
      callId: callControlId,
      kind: 'call_control',
      from: input.from,
      to: input.to,
      rule: 'api',
      route: 'translated',
      clientState,
    });
    await registry.update(callControlId, { sessionId: session.id });
    // Webhooks can beat the dial response; a hangup seen before the row existed could not mark it ended.
    const early = (await registry.events(callControlId)).find((e) => e.type === 'call.hangup');
    if (early) {
      const cause =
        isObject(early.data) && typeof early.data.hangup_cause === 'string' ? early.data.hangup_cause : 'hangup';
      await registry.callEnded(callControlId, { reason: cause, sessionId: session.id });
      this.#streams.delete(session.id);
    }
    log.info({ callControlId, sessionId: session.id, streamOnAnswer: onAnswer }, 'outbound translated call dialled');
    return { status: 201, body: { call_control_id: callControlId, session_id: session.id, call_ref: callRef } };
  }

  /** Called for call.answered of a call dialled without a stream; the work runs after the webhook reply. */
  startStreamOnAnswer(callControlId: string, sessionId: string): void {
    const task = this.#startStream(callControlId, sessionId)
      .catch((err: unknown) => this.#streamFailed(callControlId, sessionId, err))
      .finally(() => this.#tasks.delete(task));
    this.#tasks.add(task);
  }

  forget(sessionId: string | undefined): void {
    if (sessionId) this.#streams.delete(sessionId);
  }

  /** Wait for background work (stream starts) to settle; for shutdown and tests. */
  async idle(): Promise<void> {
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks]);
  }

  async #startStream(callControlId: string, sessionId: string): Promise<void> {
    const telnyx = this.#d.telnyx;
    if (!telnyx) throw new Error('Telnyx API key not configured');
    // After a restart the stream details are gone from memory: ask Kallglot again.
    const stream = this.#streams.get(sessionId)?.stream ?? (await this.#d.kallglot.getSession(sessionId)).stream;
    if (!stream) throw new Error('Kallglot session has no stream');
    // Its command_id is per session: Telnyx ignores a repeat, so a redelivered answered cannot start a second stream.
    await telnyx.calls.actions.startStreaming(callControlId, streamingParams(sessionId, stream));
    this.#streams.delete(sessionId);
    await this.#d.registry.addEvent(callControlId, 'stream_start_requested', null, `stream-start:${callControlId}`);
    this.#d.logger.info({ callControlId, sessionId }, 'stream started on answer');
  }

  /** A call without its stream has nobody on the other end: end the session and hang the call up. */
  async #streamFailed(callControlId: string, sessionId: string, err: unknown): Promise<void> {
    const { logger, registry, sessionEnder } = this.#d;
    logger.error({ err: describeTelnyxError(err), callControlId, sessionId }, 'starting the stream failed; hanging up');
    this.#streams.delete(sessionId);
    try {
      await registry.addEvent(callControlId, 'stream_start_failed', {
        message: err instanceof Error ? err.message : String(err),
      });
      sessionEnder.end(sessionId, 'error', 'stream_start_failed', callControlId);
      await this.#d.telnyx?.calls.actions.hangup(callControlId, {});
    } catch (e) {
      logger.error({ err: describeTelnyxError(e), callControlId }, 'hanging up after a failed stream start failed');
    }
  }

  #remember(sessionId: string, stream: KallglotStream): void {
    const now = Date.now();
    for (const [id, s] of this.#streams) if (now - s.at > STREAM_KEEP_MS) this.#streams.delete(id);
    this.#streams.set(sessionId, { stream, at: now });
  }
}

function parseOutbound(raw: Buffer): OutboundRequest | string {
  const body = safeJson(raw.toString('utf8'));
  if (!isObject(body)) return 'body must be a JSON object';
  const { to, from, mode } = body;
  if (typeof to !== 'string' || !NUMBER_OR_SIP.test(to)) return 'to must be an E.164 number (+…) or a sip: URI';
  if (typeof from !== 'string' || !NUMBER_OR_SIP.test(from)) return 'from must be an E.164 number (+…) or a sip: URI';
  const out: OutboundRequest = { to, from, mode: 'bidirectional_translation' };
  if (mode !== undefined) {
    if (mode !== 'bidirectional_translation' && mode !== 'assistive_translation')
      return 'mode must be bidirectional_translation or assistive_translation';
    out.mode = mode satisfies SessionMode;
  }
  for (const [key, field] of [
    ['source_language', 'sourceLanguage'],
    ['target_language', 'targetLanguage'],
  ] as const) {
    const v = body[key];
    if (v === undefined) continue;
    const code = typeof v === 'string' ? canonicalLanguage(v) : undefined;
    if (!code) return `${key} must be a language code such as de, en or pt-BR`;
    out[field] = code;
  }
  return out;
}
