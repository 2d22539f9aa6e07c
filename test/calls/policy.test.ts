import { describe, expect, it } from 'vitest';
import {
  callerFailure,
  unsupportedRequired,
  fillUriTemplate,
  isFinalFailure,
  passThroughDialogHeaders,
  passThroughInviteHeaders,
  sessionTimerAnswer,
  sessionTimerHeaders,
} from '../../src/calls/policy.ts';

describe('fallback policy', () => {
  it("never falls back after the callee's own answer or the caller's cancel", () => {
    for (const s of [486, 487, 600, 603]) expect(isFinalFailure(s)).toBe(true);
    for (const s of [404, 407, 408, 480, 500, 502, 503, 504, 604, 606]) expect(isFinalFailure(s)).toBe(false);
  });

  it('fills URI templates and escapes user parts', () => {
    expect(fillUriTemplate('sip:{session_id}@{domain}', { session_id: 'sess_1', domain: 'sip.telnyx.com' })).toBe(
      'sip:sess_1@sip.telnyx.com',
    );
    expect(fillUriTemplate('sip:{called}@{domain}', { called: '+49 30 1', domain: 'd' })).toBe('sip:+49%2030%201@d');
    expect(() => fillUriTemplate('sip:{nope}@x', {})).toThrow(/nope/);
  });

  it('passes only safe headers to the Telnyx leg', () => {
    const out = passThroughInviteHeaders([
      ['Via', 'x'],
      ['X-Foo', '1'],
      ['P-Asserted-Identity', '<sip:+1@x>'],
      ['Diversion', '<sip:1@x>'],
      ['Contact', '<sip:a@b>'],
      ['X-Kallglot-Session-Id', 'spoofed'],
      ['Call-ID', 'c'],
      ['Route', '<sip:r>'],
    ]);
    expect(out).toEqual([
      ['X-Foo', '1'],
      ['P-Asserted-Identity', '<sip:+1@x>'],
      ['Diversion', '<sip:1@x>'],
    ]);
  });

  it('passes RFC 4028 session timers through only when asked, and arms the watchdog only when the far end agreed', () => {
    expect(sessionTimerHeaders([['Via', 'x']])).toEqual({ headers: [] });
    expect(
      sessionTimerHeaders([
        ['Session-Expires', '1800;refresher=uac'],
        ['Min-SE', '90'],
      ]),
    ).toEqual({
      intervalSec: 1800,
      headers: [
        ['Session-Expires', '1800;refresher=uac'],
        ['Supported', 'timer'],
        ['Min-SE', '90'],
      ],
    });
    expect(sessionTimerAnswer([['Content-Type', 'application/sdp']])).toEqual({ headers: [] });
    expect(
      sessionTimerAnswer([
        ['Session-Expires', '90;refresher=uas'],
        ['Require', 'timer'],
      ]),
    ).toEqual({
      intervalSec: 90,
      headers: [
        ['Session-Expires', '90;refresher=uas'],
        ['Require', 'timer'],
      ],
    });
    expect(sessionTimerAnswer([['x', 'garbage']])).toEqual({ headers: [] });
  });

  it('never hands the PBX a challenge meant for the gateway', () => {
    expect(callerFailure(407, 'Proxy Authentication Required').status).toBe(503);
    expect(callerFailure(401, 'Unauthorized').status).toBe(503);
    expect(callerFailure(486, 'Busy Here')).toEqual({ status: 486, reason: 'Busy Here' });
  });

  it('keeps session-timer negotiation on relayed refreshes but no other option tags', () => {
    expect(
      passThroughDialogHeaders([
        ['Session-Expires', '90;refresher=uac'],
        ['Min-SE', '90'],
        ['Require', 'timer, 100rel'],
        ['Supported', '100rel'],
        ['Supported', 'timer'],
        ['Contact', '<sip:x>'],
        ['X-Foo', '1'],
        ['Via', 'v'],
      ]),
    ).toEqual([
      ['Session-Expires', '90;refresher=uac'],
      ['Min-SE', '90'],
      ['Require', 'timer'],
      ['Supported', 'timer'],
      ['X-Foo', '1'],
    ]);
  });
});

describe('required extensions (RFC 3261 §8.2.2.3)', () => {
  it('lists the option tags of Require that are not supported, once each, case-insensitively', () => {
    expect(unsupportedRequired([['Require', '100rel']])).toEqual(['100rel']);
    expect(unsupportedRequired([['Require', 'timer']])).toEqual([]);
    expect(
      unsupportedRequired([
        ['require', 'Timer, 100REL, precondition'],
        ['Require', '100rel'],
      ]),
    ).toEqual(['100rel', 'precondition']);
    expect(unsupportedRequired([['Supported', '100rel, timer']])).toEqual([]);
    expect(unsupportedRequired([])).toEqual([]);
  });
});
