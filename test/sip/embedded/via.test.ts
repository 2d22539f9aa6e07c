import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/sip/syntax/errors.ts';
import { formatVia, parseVia, viaBranch, viaRport } from '../../../src/sip/embedded/via.ts';
import { formatCSeq, parseCSeq } from '../../../src/sip/embedded/cseq.ts';

describe('parseVia', () => {
  it('parses a typical Via', () => {
    const v = parseVia('SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport');
    expect(v).toEqual({
      protocol: 'SIP/2.0',
      transport: 'UDP',
      host: '192.0.2.1',
      port: 5060,
      params: expect.anything(),
    });
    expect(viaBranch(v)).toBe('z9hG4bK776asdhds');
    expect(viaRport(v)).toBeNull();
  });

  it('allows whitespace around / : ; and = and upper-cases the transport', () => {
    const v = parseVia('  sip / 2.0 / tcp\t host.example.com : 5061 ; Branch = z9hG4bKabc ; received=1.2.3.4 ');
    expect(v.protocol).toBe('SIP/2.0');
    expect(v.transport).toBe('TCP');
    expect(v.host).toBe('host.example.com');
    expect(v.port).toBe(5061);
    expect({ ...v.params }).toEqual({ branch: 'z9hG4bKabc', received: '1.2.3.4' });
  });

  it('parses IPv6 sent-by and received', () => {
    const v = parseVia('SIP/2.0/WS [2001:db8::1]:5060;branch=z9hG4bK1;received=[2001:db8::2];rport=5070');
    expect(v.transport).toBe('WS');
    expect(v.host).toBe('[2001:db8::1]');
    expect(v.params.received).toBe('[2001:db8::2]');
    expect(viaRport(v)).toBe(5070);
  });

  it('reports absent branch and rport as undefined', () => {
    const v = parseVia('SIP/2.0/TLS example.com');
    expect(v.port).toBeUndefined();
    expect(viaBranch(v)).toBeUndefined();
    expect(viaRport(v)).toBeUndefined();
    expect(viaRport(parseVia('SIP/2.0/UDP h;rport=abc'))).toBeNull();
  });

  it('round-trips through formatVia', () => {
    for (const text of [
      'SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport',
      'SIP/2.0/TCP [2001:db8::1];branch=z9hG4bK1;received=[2001:db8::2];rport=5070',
      'SIP/2.0/TLS example.com;maddr=224.2.0.1;ttl=16',
    ]) {
      expect(formatVia(parseVia(text))).toBe(text);
    }
  });

  it.each([
    'SIP/2.0/UDP',
    'SIP/2.0 UDP host',
    'SIP/2.0/UDPhost',
    'SIP/2.0/UDP host:70000',
    'SIP/2.0/UDP host:',
    'SIP/2.0/UDP host;branch=a, SIP/2.0/UDP other',
    'SIP/2.0/UDP host;=x',
    'SIP/2.0/UDP [::1',
    'SIP/2.0/UDP ho$t',
    '',
  ])('rejects %j', (text) => {
    expect(() => parseVia(text)).toThrow(SipParseError);
  });
});

describe('parseCSeq', () => {
  it('parses and formats', () => {
    expect(parseCSeq(' 4711   INVITE ')).toEqual({ seq: 4711, method: 'INVITE' });
    expect(parseCSeq('4294967295 BYE').seq).toBe(4294967295);
    expect(parseCSeq('0007 ACK').seq).toBe(7);
    expect(formatCSeq({ seq: 1, method: 'REGISTER' })).toBe('1 REGISTER');
  });

  it.each([
    '4294967296 INVITE',
    '36893488147419103232 INVITE',
    '-1 INVITE',
    'INVITE',
    '1',
    '1 IN VITE',
    '1.5 INVITE',
    '',
  ])('rejects %j', (text) => {
    expect(() => parseCSeq(text)).toThrow(SipParseError);
  });
});
