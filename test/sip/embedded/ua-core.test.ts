/** Via sent-by and Contact as the UA core writes them (RFC 3261 §20.42, §25.1; IPv6 references per RFC 5118). */
import { describe, expect, it } from 'vitest';
import { createRequest, SipHeaders } from '../../../src/sip/embedded/message.ts';
import {
  buildRequest,
  contactValue,
  localHost,
  transportOf,
  type UaContext,
  viaValue,
} from '../../../src/sip/embedded/ua-core.ts';
import { parseVia } from '../../../src/sip/embedded/via.ts';
import { parseUri } from '../../../src/sip/syntax/uri.ts';

/** Only the fields the builders read; no transaction layer is involved. */
function ctx(publicAddress: string, publicAddress6?: string): UaContext {
  return { publicAddress, publicAddress6, family: 0, localPort: 5060, userAgent: 'test' } as UaContext;
}

describe('Via and Contact addresses', () => {
  it('brackets an IPv6 public address in Via sent-by and in the Contact URI', () => {
    const c = ctx('2001:db8::5');
    const via = viaValue(c, 'udp', 'z9hG4bKx');
    expect(via).toBe('SIP/2.0/UDP [2001:db8::5]:5060;branch=z9hG4bKx;rport');
    expect(parseVia(via)).toMatchObject({ host: '[2001:db8::5]', port: 5060 });
    const contact = contactValue(c, 'tcp');
    expect(contact).toBe('<sip:gw@[2001:db8::5]:5060;transport=tcp>');
    expect(parseUri(contact.slice(1, -1))).toMatchObject({ host: '[2001:db8::5]', port: 5060 });
  });

  it('keeps an address already written in brackets as it is', () => {
    expect(viaValue(ctx('[::1]'), 'udp', 'z9hG4bKy')).toBe('SIP/2.0/UDP [::1]:5060;branch=z9hG4bKy;rport');
  });

  it('writes the address of the peer family when it has one of each (dual-stack)', () => {
    const c = ctx('192.0.2.5', '2001:db8::5');
    expect(localHost(c, '2001:db8::99')).toBe('[2001:db8::5]');
    expect(localHost(c, '[::1]')).toBe('[2001:db8::5]');
    expect(localHost(c, '198.51.100.7')).toBe('192.0.2.5');
    // An IPv4 peer seen through a dual-stack socket is still an IPv4 peer.
    expect(localHost(c, '::ffff:198.51.100.7')).toBe('192.0.2.5');
    expect(localHost(c)).toBe('192.0.2.5');
    expect(contactValue(c, 'udp', '::1')).toBe('<sip:gw@[2001:db8::5]:5060>');
    expect(viaValue(c, 'udp', 'z9hG4bKz', '127.0.0.1')).toBe('SIP/2.0/UDP 192.0.2.5:5060;branch=z9hG4bKz;rport');
  });

  it('writes its one address toward every peer when it has only one', () => {
    expect(localHost(ctx('192.0.2.5'), '2001:db8::99')).toBe('192.0.2.5');
    expect(localHost(ctx('::1'), '127.0.0.1')).toBe('[::1]');
    expect(localHost(ctx('gw.example.com'), '2001:db8::99')).toBe('gw.example.com');
  });

  it('builds a request toward an IPv6 next hop with bracketed Via and Contact', () => {
    const req = buildRequest(ctx('192.0.2.5', '2001:db8::5'), {
      method: 'INVITE',
      uri: 'sip:+4930@[2001:db8::1]:5080',
      transport: 'udp',
      peer: '2001:db8::1',
      from: '<sip:gw@example.com>;tag=a',
      to: '<sip:+4930@[2001:db8::1]:5080>',
      callId: 'c1',
      cseq: 1,
      contact: true,
    });
    expect(req.headers.get('Via')).toMatch(/^SIP\/2\.0\/UDP \[2001:db8::5\]:5060;branch=z9hG4bK\w+;rport$/);
    expect(req.headers.get('Contact')).toBe('<sip:gw@[2001:db8::5]:5060>');
  });
});

describe('TLS in Via and Contact', () => {
  const tlsCtx = (): UaContext => ({ ...ctx('192.0.2.5'), tlsPort: 5061 }) as UaContext;

  it('writes SIP/2.0/TLS and the TLS listener port in Via, the UDP/TCP port for the others', () => {
    expect(viaValue(tlsCtx(), 'tls', 'z9hG4bKt')).toBe('SIP/2.0/TLS 192.0.2.5:5061;branch=z9hG4bKt;rport');
    expect(viaValue(tlsCtx(), 'tcp', 'z9hG4bKt')).toBe('SIP/2.0/TCP 192.0.2.5:5060;branch=z9hG4bKt;rport');
    // Without a TLS listener (TLS only toward Telnyx) the one port it has.
    expect(viaValue(ctx('192.0.2.5'), 'tls', 'z9hG4bKt')).toBe('SIP/2.0/TLS 192.0.2.5:5060;branch=z9hG4bKt;rport');
  });

  it('writes a sip: Contact with transport=tls, and a sips: Contact for a sips: Request-URI (RFC 3261 §8.1.1.8)', () => {
    expect(contactValue(tlsCtx(), 'tls')).toBe('<sip:gw@192.0.2.5:5061;transport=tls>');
    expect(contactValue(tlsCtx(), 'tls', undefined, 'sip:sess_1@sip.telnyx.com')).toBe(
      '<sip:gw@192.0.2.5:5061;transport=tls>',
    );
    expect(contactValue(tlsCtx(), 'tls', undefined, 'SIPS:sess_1@sip.telnyx.com')).toBe('<sips:gw@192.0.2.5:5061>');
    const req = buildRequest(tlsCtx(), {
      method: 'INVITE',
      uri: 'sips:sess_1@sip.telnyx.com',
      transport: 'tls',
      from: '<sips:gw@example.com>;tag=a',
      to: '<sips:sess_1@sip.telnyx.com>',
      callId: 'c2',
      cseq: 1,
      contact: true,
    });
    expect(req.headers.get('Via')).toMatch(/^SIP\/2\.0\/TLS 192\.0\.2\.5:5061;/);
    expect(req.headers.get('Contact')).toBe('<sips:gw@192.0.2.5:5061>');
  });

  it('reads the transport of a request from its top Via', () => {
    const of = (via: string) => transportOf(createRequest('BYE', 'sip:x@y', new SipHeaders([['Via', via]])));
    expect(of('SIP/2.0/TLS 10.0.0.1:5061;branch=z9hG4bK1')).toBe('tls');
    expect(of('SIP/2.0/TCP 10.0.0.1;branch=z9hG4bK1')).toBe('tcp');
    expect(of('SIP / 2.0 / tls 10.0.0.1;branch=z9hG4bK1')).toBe('tls');
    expect(of('SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1')).toBe('udp');
  });
});
