/**
 * The one builder of Kallglot session requests from a routing decision and the facts of a call, for every path that
 * creates sessions. The idempotency key is derived from the call's own id, so a retried create (ours, or Telnyx
 * re-posting a slow webhook) can never bill a second session for the same call.
 */
import type { CreateSessionInput, KallglotSession } from '../kallglot/types.ts';
import type { TranslatedDecision } from '../routing/types.ts';

/** What creates sessions (the Kallglot client; a fake in tests). */
export interface SessionCreator {
  createSession(input: CreateSessionInput, opts?: { signal?: AbortSignal }): Promise<KallglotSession>;
}

/** The call a session is for, by the path it arrived on. */
export type CallFacts =
  | { channel: 'sip'; callId: string; from: string; to: string; pbxSource: string }
  | { channel: 'texml'; callSid: string; from: string; to: string }
  /** A call the gateway dials through Call Control (POST /calls): no routing rule, the API request chose. */
  | { channel: 'call_control_outbound'; callRef: string; from: string; to: string };

export function sessionRequest(decision: TranslatedDecision, call: CallFacts): CreateSessionInput {
  const common = {
    mode: decision.mode,
    sourceLanguage: decision.sourceLanguage,
    targetLanguage: decision.targetLanguage,
    recording: decision.recording ? { enabled: true, channels: 'dual' as const } : undefined,
  };
  if (call.channel === 'sip') {
    return {
      ...common,
      // SIP trunking: Telnyx reaches the session through the Request-URI the gateway dials, no number needed.
      routing: { type: 'sip' },
      metadata: {
        ...decision.metadata,
        sip_call_id: call.callId,
        from: call.from,
        to: call.to,
        pbx_source: call.pbxSource,
        rule: decision.ruleName,
      },
      idempotencyKey: `sip-${call.callId}`,
    };
  }
  if (call.channel === 'call_control_outbound') {
    return {
      ...common,
      // Our Telnyx number is the caller here, as the called number is on inbound calls.
      routing: { phoneNumber: call.from },
      metadata: { ...decision.metadata, call_ref: call.callRef, from: call.from, to: call.to, direction: 'outbound' },
      idempotencyKey: `outbound-${call.callRef}`,
    };
  }
  return {
    ...common,
    routing: { phoneNumber: call.to },
    metadata: { ...decision.metadata, call_sid: call.callSid, from: call.from, to: call.to, rule: decision.ruleName },
    // Telnyx retries the Voice URL on a slow answer: the same CallSid must yield the same (single-billed) session.
    idempotencyKey: `texml-${call.callSid}`,
  };
}
