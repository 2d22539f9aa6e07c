import { describe, expect, it } from 'vitest';
import { hostAllowed, isRedirect, redirectTargets } from '../../src/calls/redirect.ts';
import { redirectToCaller } from '../../src/calls/telnyx-leg.ts';

describe('redirect targets (RFC 3261 §8.1.3.4)', () => {
  it('takes the Contact values to allowed hosts, highest q first, stable among equals', () => {
    const headers: Array<[string, string]> = [
      ['Contact', '<sip:a@sbc1.sip.telnyx.com>;q=0.5, <sip:b@sip.telnyx.com>'],
      ['Contact', '<sip:c@evil.example>;q=1'],
      ['m', '<sips:d@sbc2.sip.telnyx.com>;q=0.5'],
      ['Contact', '<tel:+4930123>'],
      ['Contact', 'not a contact'],
    ];
    expect(redirectTargets(headers, ['sip.telnyx.com'])).toEqual([
      'sip:b@sip.telnyx.com',
      'sip:a@sbc1.sip.telnyx.com',
      'sips:d@sbc2.sip.telnyx.com',
    ]);
  });

  it('allowed hosts: a name covers its subdomains only on a dot boundary; IPs match exactly', () => {
    expect(hostAllowed('sbc.sip.telnyx.com', ['sip.telnyx.com'])).toBe(true);
    expect(hostAllowed('SIP.TELNYX.COM', ['.sip.telnyx.com'])).toBe(true);
    expect(hostAllowed('evilsip.telnyx.com', ['sip.telnyx.com'])).toBe(false);
    expect(hostAllowed('127.0.0.1', ['127.0.0.1'])).toBe(true);
    expect(hostAllowed('127.0.0.2', ['127.0.0.1'])).toBe(false);
    expect(hostAllowed('[::1]', ['::1'])).toBe(true);
    expect(hostAllowed('anything', [])).toBe(false);
  });

  it('3xx only', () => {
    expect([299, 300, 302, 399, 400].map(isRedirect)).toEqual([false, true, true, true, false]);
  });

  it('for the PBX: relay keeps the Contacts, follow turns an unfollowed 3xx into 503, other failures are not touched', () => {
    const moved = {
      answered: false as const,
      status: 302,
      reason: 'Moved Temporarily',
      headers: [
        ['Contact', '<sip:x@y>'],
        ['X-A', '1'],
      ] as Array<[string, string]>,
    };
    expect(redirectToCaller(moved, 'relay')).toEqual({
      status: 302,
      reason: 'Moved Temporarily',
      headers: [['Contact', '<sip:x@y>']],
    });
    expect(redirectToCaller(moved, 'follow')).toEqual({ status: 503, reason: 'Service Unavailable', headers: [] });
    expect(redirectToCaller({ ...moved, status: 486 }, 'relay')).toBeUndefined();
  });
});
