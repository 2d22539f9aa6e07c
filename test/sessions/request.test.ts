import { describe, expect, it } from 'vitest';
import { sessionRequest } from '../../src/sessions/request.ts';
import type { TranslatedDecision } from '../../src/routing/types.ts';

const decision: TranslatedDecision = {
  ruleName: 'german',
  mode: 'bidirectional_translation',
  sourceLanguage: 'de',
  targetLanguage: 'en',
  metadata: { team: 'support' },
  recording: true,
};

describe('sessionRequest', () => {
  it('SIP: routing type sip, call facts in metadata, idempotency from the Call-ID', () => {
    const req = sessionRequest(decision, {
      channel: 'sip',
      callId: 'abc@pbx',
      from: '+1555',
      to: '+4930',
      pbxSource: '10.0.0.1',
    });
    expect(req).toEqual({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
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
      },
    );
    expect(req).toMatchObject({
      mode: 'assistive_translation',
      routing: { phoneNumber: '+4930' },
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
      },
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
      },
    );
    expect(req).toMatchObject({ routing: { phoneNumber: '+4930111' }, idempotencyKey: 'outbound-ref-1' });
    expect(req.metadata).toEqual({ call_ref: 'ref-1', from: '+4930111', to: '+1555', direction: 'outbound' });
  });
});
