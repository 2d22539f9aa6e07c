/**
 * The one builder of Kallglot session requests from a routing decision and the facts of a call, for every path that
 * creates sessions. The idempotency key is derived from the call's own id, so a retried create (ours, or Telnyx
 * re-posting a slow webhook) can never bill a second session for the same call.
 *
 * Every request names the other party (`sipUri`): the address Kallglot would connect the call to. The wire shape it
 * travels in (`routing` or `provider`) is the caller's configuration (KALLGLOT_REQUEST_STYLE), passed in so this
 * stays a pure function of its arguments.
 */
import type { CreateSessionInput, KallglotSession, RequestStyle } from '../kallglot/types.ts';
import type { TranslatedDecision } from '../routing/types.ts';

/** What creates sessions (the Kallglot client; a fake in tests). */
export interface SessionCreator {
  createSession(input: CreateSessionInput, opts?: { signal?: AbortSignal }): Promise<KallglotSession>;
}

/** The call a session is for, by the path it arrived on. */
export type CallFacts =
  | {
      channel: 'sip';
      callId: string;
      from: string;
      to: string;
      pbxSource: string;
      /**
       * The other party's SIP URI. A call from the PBX to Telnyx: the direct route (DIRECT_URI_TEMPLATE filled with
       * the call's values, i.e. the untranslated destination). A call from Telnyx to the PBX: the PBX target.
       */
      otherPartyUri: string;
    }
  | {
      channel: 'texml';
      callSid: string;
      from: string;
      to: string;
      /** The number the call is dialled to untranslated (DIRECT_NUMBER, else To) as a URI (partyUri); none: neither set. */
      otherPartyUri: string | undefined;
    }
  /** A call the gateway dials through Call Control (POST /calls): no routing rule, the API request chose. */
  | { channel: 'call_control_outbound'; callRef: string; from: string; to: string; otherPartyUri: string }
  /** A call arriving on a Call Control application (call.initiated, incoming): ruled like a TeXML call. */
  | {
      channel: 'call_control_inbound';
      callControlId: string;
      from: string;
      to: string;
      /** As for TeXML: DIRECT_NUMBER, else To, as a URI (partyUri). */
      otherPartyUri: string | undefined;
    };

export function sessionRequest(decision: TranslatedDecision, call: CallFacts, style: RequestStyle): CreateSessionInput {
  const common = {
    mode: decision.mode,
    sourceLanguage: decision.sourceLanguage,
    targetLanguage: decision.targetLanguage,
    requestStyle: style,
    ...(call.otherPartyUri !== undefined ? { sipUri: call.otherPartyUri } : {}),
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
  if (call.channel === 'call_control_inbound') {
    const { callControlId, from, to } = call;
    return {
      ...common,
      routing: { phoneNumber: to },
      metadata: { ...decision.metadata, call_control_id: callControlId, from, to, rule: decision.ruleName },
      // Telnyx redelivers call.initiated: the same call must yield the same (single-billed) session.
      idempotencyKey: `call-control-${callControlId}`,
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

/**
 * A number or address from Telnyx (TeXML To, DIRECT_NUMBER, a Call Control `to`) as a URI: a sip:, sips: or tel: URI
 * is kept; an E.164 number becomes `tel:+…` (RFC 3966: a global number needs no domain, and Telnyx dials numbers,
 * not SIP hosts); anything else (a short code such as 112, an extension) becomes `sip:<it>@<sipDomain>`, because a
 * tel: URI for a local number would need a phone-context nobody configured. Empty: undefined (no party to name).
 */
export function partyUri(address: string, sipDomain: string): string | undefined {
  const a = address.trim();
  if (a === '') return undefined;
  if (/^(sips?|tel):/i.test(a)) return a;
  if (/^\+[1-9]\d{1,14}$/.test(a)) return `tel:${a}`;
  return `sip:${encodeURIComponent(a)}@${sipDomain}`;
}
