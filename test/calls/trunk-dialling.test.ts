/** What a Telnyx trunk does to numbers and Request-URIs: E.164 from national and international formats, tech prefix. */
import { describe, expect, it } from 'vitest';
import { toE164, trunkUri, withTechPrefix } from '../../src/calls/trunk-dialling.ts';
import type { TelnyxTrunk } from '../../src/config/trunks.ts';

const DE = { countryCode: '49', nationalPrefix: '0', internationalPrefix: '00' };
const US = { countryCode: '1', nationalPrefix: '1', internationalPrefix: '011' };
const ES = { countryCode: '34', nationalPrefix: '', internationalPrefix: '00' };

describe('toE164', () => {
  it('turns national and international formats into E.164 per the trunk', () => {
    expect(toE164('030 1234567', DE)).toBe('+49301234567');
    expect(toE164('0049 30 1234567', DE)).toBe('+49301234567');
    expect(toE164('(030) 123-4567', DE)).toBe('+49301234567');
    expect(toE164('+44 20 7946 0000', DE)).toBe('+442079460000');
    expect(toE164('12125551234', US)).toBe('+12125551234');
    expect(toE164('011 44 20 7946 0000', US)).toBe('+442079460000');
    expect(toE164('912345678', ES)).toBe('+34912345678');
  });

  it('leaves alone what is not a national number: short numbers, names, numbers without a format', () => {
    expect(toE164('112', DE)).toBe('112');
    expect(toE164('110', ES)).toBe('110');
    expect(toE164('0800', DE)).toBe('0800');
    expect(toE164('anonymous', DE)).toBe('anonymous');
    expect(toE164('sipp', US)).toBe('sipp');
    expect(toE164('*49*301234567', DE)).toBe('*49*301234567');
    expect(toE164('030 1234567', undefined)).toBe('030 1234567');
    expect(toE164('030 1234567', { ...DE, countryCode: '' })).toBe('030 1234567');
    // A subscriber number without the national prefix is not guessed at.
    expect(toE164('2125551234', US)).toBe('2125551234');
  });
});

describe('withTechPrefix', () => {
  it('goes in front of the user part, sip: and sips:, and leaves URIs without a user alone', () => {
    expect(withTechPrefix('sip:+4930123@sip.telnyx.com', '1234#')).toBe('sip:1234%23+4930123@sip.telnyx.com');
    expect(withTechPrefix('sip:+4930123@sip.telnyx.com', '12*')).toBe('sip:12*+4930123@sip.telnyx.com');
    expect(withTechPrefix('sips:sess_1@sip.telnyx.com;transport=tls', '77')).toBe(
      'sips:77sess_1@sip.telnyx.com;transport=tls',
    );
    expect(withTechPrefix('sip:sip.telnyx.com', '77')).toBe('sip:sip.telnyx.com');
    expect(withTechPrefix('sip:+4930123@sip.telnyx.com', '')).toBe('sip:+4930123@sip.telnyx.com');
  });
});

describe('trunkUri', () => {
  const trunk: TelnyxTrunk = {
    name: 'eu',
    sipDomain: 'sip-eu.telnyx.com',
    outboundProxy: '',
    sipTransport: 'udp',
    sipUsername: '',
    sipPassword: '',
    translatedUriTemplate: 'sip:{session_id}@{domain};from={calling}',
    directUriTemplate: 'sip:{called}@{domain}',
    techPrefix: '55#',
    numberFormat: DE,
    maxCallsPerSecond: 20,
    maxConcurrent: 0,
  };
  const numbers = { called: '030 1234567', calling: '089 5555555' };

  it('fills the trunk template with its domain and numbers, then puts its tech prefix in front', () => {
    expect(trunkUri(trunk, 'direct', numbers)).toBe('sip:55%23+49301234567@sip-eu.telnyx.com');
    expect(trunkUri(trunk, 'translated', numbers, { session_id: 'sess_9' })).toBe(
      'sip:55%23sess_9@sip-eu.telnyx.com;from=+49895555555',
    );
  });
});
