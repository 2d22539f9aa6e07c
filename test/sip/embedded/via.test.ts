import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/sip/syntax/errors.ts';
import { formatVia, parseVia, stampReceived, viaBranch, viaRport } from '../../../src/sip/embedded/via.ts';
import type { SipRequest } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { topVia } from '../../../src/sip/embedded/transaction-helpers.ts';
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

describe('the top Via is parsed once per message', () => {
  const raw = Buffer.from(
    'OPTIONS sip:gw@192.0.2.9 SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKcache1;rport\r\n' +
      'From: <sip:a@192.0.2.1>;tag=1\r\nTo: <sip:gw@192.0.2.9>\r\nCall-ID: c1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n',
  );

  function parsed(): SipRequest {
    const r = parseMessage(raw);
    if (!r.ok || r.message.kind !== 'request') throw new Error('unparsed');
    return r.message;
  }

  it('the parser keeps its parse; topVia returns it', () => {
    const req = parsed();
    expect(req.parsedVia?.via.params.branch).toBe('z9hG4bKcache1');
    expect(topVia(req)).toBe(req.parsedVia?.via);
  });

  it('stampReceived leaves the parse of the stamped text, without touching the one it started from', () => {
    const req = parsed();
    const before = topVia(req);
    expect(stampReceived(req, { transport: 'udp', address: '198.51.100.7', port: 40000 })).toBe(true);
    expect(before.params.received).toBeUndefined();
    expect(topVia(req)).toBe(req.parsedVia?.via);
    expect(topVia(req)).toEqual(parseVia(req.headers.getAll('Via')[0] ?? ''));
    expect(topVia(req).params).toMatchObject({ received: '198.51.100.7', rport: '40000' });
  });

  it('parses again once the Via text changed', () => {
    const req = parsed();
    req.headers.set('Via', 'SIP/2.0/TCP 192.0.2.2;branch=z9hG4bKcache2');
    expect(topVia(req)).toMatchObject({ transport: 'TCP', host: '192.0.2.2', params: { branch: 'z9hG4bKcache2' } });
  });
});
