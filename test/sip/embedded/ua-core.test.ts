/** Via sent-by and Contact as the UA core writes them (RFC 3261 §20.42, §25.1; IPv6 references per RFC 5118). */
import { describe, expect, it } from 'vitest';
import { buildRequest, contactValue, localHost, type UaContext, viaValue } from '../../../src/sip/embedded/ua-core.ts';
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
