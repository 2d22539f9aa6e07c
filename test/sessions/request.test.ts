import { describe, expect, it } from 'vitest';
import { partyUri, sessionRequest } from '../../src/sessions/request.ts';
import type { TranslatedDecision } from '../../src/routing/types.ts';

const decision: TranslatedDecision = {
  ruleName: 'german',
  calledNumber: '+4930',
  mode: 'bidirectional_translation',
  sourceLanguage: 'de',
  targetLanguage: 'en',
  metadata: { team: 'support' },
  recording: true,
};

describe('sessionRequest', () => {
  it('SIP: routing type sip, the direct route as the other party, call facts in metadata, idempotency from the Call-ID', () => {
    const req = sessionRequest(
      decision,
      {
        channel: 'sip',
        callId: 'abc@pbx',
        from: '+1555',
        to: '+4930',
        pbxSource: '10.0.0.1',
        otherPartyUri: 'sip:+4930@sip.telnyx.com',
      },
      'routing',
    );
    expect(req).toEqual({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
      requestStyle: 'routing',
      sipUri: 'sip:+4930@sip.telnyx.com',
      recording: { enabled: true, channels: 'dual' },
      routing: { type: 'sip' },
      metadata: {
        team: 'support',
        sip_call_id: 'abc@pbx',
        from: '+1555',
        to: '+4930',
        pbx_source: '10.0.0.1',
        rule: 'german',
      },
      idempotencyKey: 'sip-abc@pbx',
    });
  });

  it('TeXML: the called number routes, idempotency from the CallSid; no recording unless the rule asks', () => {
    const req = sessionRequest(
      { ...decision, recording: false, mode: 'assistive_translation' },
      {
        channel: 'texml',
        callSid: 'CA1',
        from: '+1555',
        to: '+4930',
        otherPartyUri: 'tel:+4930',
      },
      'routing',
    );
    expect(req).toMatchObject({
      mode: 'assistive_translation',
      routing: { phoneNumber: '+4930' },
      sipUri: 'tel:+4930',
      idempotencyKey: 'texml-CA1',
    });
    expect(req.recording).toBeUndefined();
    expect(req.metadata).toEqual({ team: 'support', call_sid: 'CA1', from: '+1555', to: '+4930', rule: 'german' });
  });

  it('rule metadata cannot overwrite the call facts', () => {
    const req = sessionRequest(
      { ...decision, metadata: { from: 'spoofed', rule: 'x' } },
      {
        channel: 'sip',
        callId: 'c',
        from: '+1',
        to: '+2',
        pbxSource: '::1',
        otherPartyUri: 'sip:+2@sip.telnyx.com',
      },
      'routing',
    );
    expect(req.metadata).toMatchObject({ from: '+1', rule: 'german' });
  });

  it('Call Control outbound: our number (from) routes, idempotency from the call reference', () => {
    const req = sessionRequest(
      { ...decision, metadata: {}, recording: false },
      {
        channel: 'call_control_outbound',
        callRef: 'ref-1',
        from: '+4930111',
        to: '+1555',
        otherPartyUri: 'tel:+1555',
      },
      'routing',
    );
    expect(req).toMatchObject({
      routing: { phoneNumber: '+4930111' },
      sipUri: 'tel:+1555',
      idempotencyKey: 'outbound-ref-1',
    });
    expect(req.metadata).toEqual({ call_ref: 'ref-1', from: '+4930111', to: '+1555', direction: 'outbound' });
  });

  it("the style is the caller's: provider only changes requestStyle, the rest of the request stays the same", () => {
    const call = {
      channel: 'sip' as const,
      callId: 'abc@pbx',
      from: '+1555',
      to: '+4930',
      pbxSource: '10.0.0.1',
      otherPartyUri: 'sip:+4930@sip.telnyx.com',
    };
    const routing = sessionRequest(decision, call, 'routing');
    const provider = sessionRequest(decision, call, 'provider');
    expect(provider.requestStyle).toBe('provider');
    expect({ ...provider, requestStyle: 'routing' }).toEqual(routing);
    // Pure: the same arguments give the same request, and the inputs are not touched.
    expect(sessionRequest(decision, call, 'provider')).toEqual(provider);
    expect(call.otherPartyUri).toBe('sip:+4930@sip.telnyx.com');
  });

  it('a TeXML call with no number to name sends no sipUri rather than an empty one', () => {
    const req = sessionRequest(
      decision,
      { channel: 'texml', callSid: 'CA2', from: '', to: '', otherPartyUri: undefined },
      'provider',
    );
    expect(req).not.toHaveProperty('sipUri');
  });
});

describe('partyUri', () => {
  it('keeps URIs, makes E.164 numbers tel: URIs and anything else a SIP URI at the Telnyx domain', () => {
    expect(partyUri('+4930123456', 'sip.telnyx.com')).toBe('tel:+4930123456');
    expect(partyUri('sip:agent@pbx.example.com', 'sip.telnyx.com')).toBe('sip:agent@pbx.example.com');
    expect(partyUri('sips:agent@pbx.example.com', 'sip.telnyx.com')).toBe('sips:agent@pbx.example.com');
    expect(partyUri('tel:+4930123456', 'sip.telnyx.com')).toBe('tel:+4930123456');
    expect(partyUri('112', 'sip.telnyx.com')).toBe('sip:112@sip.telnyx.com');
    expect(partyUri('4930 1#', 'sip-eu.telnyx.com')).toBe('sip:4930%201%23@sip-eu.telnyx.com');
    expect(partyUri('  ', 'sip.telnyx.com')).toBeUndefined();
  });
});
