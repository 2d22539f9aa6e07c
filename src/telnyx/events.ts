/**
 * Call lifecycle events from Telnyx, for TeXML calls (form-encoded status callbacks) and Call Control calls (JSON
 * events: /webhooks/telnyx/status, /outbound and /call-control share this). Telnyx redelivers and reorders webhooks,
 * so each event is first claimed in the registry by its event id: a redelivery is acknowledged and ignored, and every
 * action taken is safe in any order (a hangup before its answered, an answered after the hangup).
 *
 * Only local work happens here (registry reads and writes, queueing the session end, whose Kallglot request runs in
 * SessionEnder's background). Anything slower is handed to hooks that run it after the HTTP reply. With a shared
 * registry (REGISTRY_URL) any instance may receive any call's events: the row, the event-id claim and the session end
 * claim are all in the database, so whichever instance gets the delivery acts, once.
 */
import type { Logger } from '../logger.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { EndReason } from '../kallglot/types.ts';
import type { CallRow, RegistryPort } from '../registry/port.ts';
import type { CallControlEvent, ClientState, Params } from './payload.ts';
import { str } from './payload.ts';
import { recordRecording, recordingFromCallControl } from './recording.ts';

/**
 * Kallglot end reason for a Telnyx hangup_cause. End reasons describe how the *session* ended (Kallglot's billing
 * and analytics), not how the phone call went:
 *  - normal_clearing: a party hung up after the conversation → completed. hangup_source is not turned into
 *    customer_hangup / agent_hangup: which Telnyx party is the "agent" depends on the deployment (inbound TeXML vs
 *    outbound dial), and a wrong guess is worse than the neutral default.
 *  - user_busy, call_rejected, no_answer, originator_cancel, not_found: the call never became a conversation, but
 *    nothing in the translation failed, so not `error` (that would count a busy line as a service fault) → completed;
 *    the cause is kept in the end detail.
 *  - timeout (ring timeout) and time_limit (maximum call length) → timeout.
 *  - anything else (unspecified, causes added later) → completed.
 */
export function endReasonForHangup(cause: string | undefined): EndReason {
  return cause === 'timeout' || cause === 'time_limit' ? 'timeout' : 'completed';
}

/** TeXML CallStatus values that mean the call is over, with the hangup_cause they correspond to. */
const TEXML_TERMINAL: Record<string, string> = {
  completed: 'normal_clearing',
  busy: 'user_busy',
  'no-answer': 'no_answer',
  canceled: 'originator_cancel',
  failed: 'unspecified',
};

export interface EventHooks {
  /** A call answered without a stream (dialled so, or an inbound call we answered): start streaming (after the reply). */
  answeredWithoutStream?: (callControlId: string, sessionId: string, state: ClientState) => void;
  /** A spoken notice ended on a call whose client_state says what comes next (an inbound fallback's transfer). */
  speakEnded?: (callControlId: string, state: ClientState) => void;
  /** The call is over; drop any per-call state. */
  hungUp?: (callId: string, sessionId: string | undefined) => void;
}

export interface EventProcessorDeps {
  registry: RegistryPort;
  sessionEnder: SessionEnder;
  logger: Logger;
  hooks?: EventHooks;
}

export type EventResult = { handled: string; callId?: string; duplicate?: boolean; ignored?: string };

export class TelnyxEventProcessor {
  readonly #d: EventProcessorDeps;

  constructor(deps: EventProcessorDeps) {
    this.#d = deps;
  }

  async callControl(ev: CallControlEvent): Promise<EventResult> {
    const { registry } = this.#d;
    const sessionId = ev.clientState?.session_id;
    // Correlate by our own ids only (client_state's session, the call_control_id), never by phone number.
    let row = sessionId ? await registry.bySession(sessionId) : undefined;
    if (!row && ev.callControlId) row = await registry.get(ev.callControlId);
    const callId = row?.call_id ?? ev.callControlId;
    if (!callId) return { handled: ev.eventType, ignored: 'no_call_control_id' };
    if (!(await registry.addEvent(callId, ev.eventType, eventData(ev), eventDedupeKey(ev, callId))))
      return { handled: ev.eventType, callId, duplicate: true };

    switch (ev.eventType) {
      case 'call.hangup':
        await this.#hangup(callId, sessionId ?? row?.session_id ?? undefined, str(ev.payload.hangup_cause));
        break;
      case 'call.answered':
        await this.#answered(callId, row, ev.occurredAt, ev.callControlId, ev.clientState);
        break;
      case 'call.recording.saved': {
        const rec = recordingFromCallControl(ev.payload);
        if (rec.url) await recordRecording(registry, callId, rec.url, 'completed');
        break;
      }
      case 'call.recording.error':
        await recordRecording(registry, callId, undefined, 'failed');
        break;
      case 'call.speak.ended':
        if (ev.callControlId && ev.clientState?.next) this.#d.hooks?.speakEnded?.(ev.callControlId, ev.clientState);
        break;
      default:
        // call.initiated (incoming ones on /call-control go to inbound.ts), streaming.*, …: kept as events, no action.
        break;
    }
    return { handled: ev.eventType, callId };
  }

  /** TeXML status callback (CallStatus …). CallSid is the call_control_id, so both event kinds meet on one row. */
  async texmlStatus(params: Params): Promise<EventResult> {
    const callSid = params.CallSid;
    const status = (params.CallStatus ?? '').toLowerCase();
    if (!callSid || !status) return { handled: 'texml.status', ignored: 'missing_call_sid_or_status' };
    const data = compact({
      status,
      hangup_cause: params.HangupCause,
      hangup_source: params.HangupSource,
      sequence: params.SequenceNumber,
    });
    const { registry } = this.#d;
    if (!(await registry.addEvent(callSid, `texml.${status}`, data, `texml-status:${callSid}:${status}`))) {
      return { handled: `texml.${status}`, callId: callSid, duplicate: true };
    }
    const terminal = TEXML_TERMINAL[status];
    if (terminal !== undefined) {
      const sessionId = (await registry.get(callSid))?.session_id ?? undefined;
      await this.#hangup(callSid, sessionId, params.HangupCause || terminal);
    } else if (status === 'in-progress' || status === 'answered') {
      await registry.update(callSid, { answerAt: parseTime(params.Timestamp) });
    }
    return { handled: `texml.${status}`, callId: callSid };
  }

  async #hangup(callId: string, sessionId: string | undefined, cause: string | undefined): Promise<void> {
    const { registry, sessionEnder, logger } = this.#d;
    if (sessionId) {
      // SessionEnder ignores repeats within this process; the registry's end status covers a restart in between,
      // and its end claim (addPendingEnd) another instance ending the same session at the same time.
      const already = (await registry.bySession(sessionId))?.session_end_status;
      if (!already)
        sessionEnder.end(sessionId, endReasonForHangup(cause), `telnyx_hangup_${cause ?? 'unknown'}`, callId);
    }
    const end = { reason: cause ?? 'hangup', ...(sessionId ? { sessionId } : {}) };
    const ended = await registry.callEnded(callId, end);
    // With a shared registry another instance may put the session on the row while this one closes it: whichever
    // of the two sees the other's write ends the session, and the end claim (addPendingEnd) keeps that to once.
    const late = sessionId ? undefined : (await registry.get(callId))?.session_id;
    if (late) sessionEnder.end(late, endReasonForHangup(cause), `telnyx_hangup_${cause ?? 'unknown'}`, callId);
    logger.info({ callId, sessionId, cause, ended }, 'telnyx call hung up');
    this.#d.hooks?.hungUp?.(callId, sessionId);
  }

  async #answered(
    callId: string,
    row: CallRow | undefined,
    occurredAt: string | undefined,
    callControlId: string | undefined,
    state: ClientState | undefined,
  ): Promise<void> {
    const { registry } = this.#d;
    if (row && row.answer_at === null) await registry.update(callId, { answerAt: parseTime(occurredAt) });
    if (state?.stream !== 'answer' || !state.session_id || !callControlId) return;
    // Answered after the hangup (out of order): nothing to stream to.
    const over =
      (await registry.get(callId))?.state === 'ended' ||
      (await registry.events(callId)).some((e) => e.type === 'call.hangup');
    if (over) return;
    this.#d.hooks?.answeredWithoutStream?.(callControlId, state.session_id, state);
  }
}

/** The registry's claim on one delivery: Telnyx keeps the event id across redeliveries. */
export function eventDedupeKey(ev: CallControlEvent, callId: string): string {
  return `telnyx:${ev.id ?? `${callId}:${ev.eventType}:${ev.occurredAt ?? ''}`}`;
}

export function eventData(ev: CallControlEvent): Record<string, unknown> {
  const p = ev.payload;
  return compact({
    occurred_at: ev.occurredAt,
    call_session_id: ev.callSessionId,
    hangup_cause: str(p.hangup_cause),
    hangup_source: str(p.hangup_source),
    sip_hangup_cause: str(p.sip_hangup_cause),
    stream_id: str(p.stream_id),
  });
}

function compact(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== ''));
}

function parseTime(iso: string | undefined): number {
  const t = iso ? Date.parse(iso) : Number.NaN;
  return Number.isNaN(t) ? Date.now() : t;
}
