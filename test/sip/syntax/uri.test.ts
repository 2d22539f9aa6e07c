import { describe, expect, it } from 'vitest';
import { SipParseError } from '../../../src/sip/syntax/errors.ts';
import { formatUri, parseUri } from '../../../src/sip/syntax/uri.ts';

describe('parseUri', () => {
  it('parses a full sip URI', () => {
    const u = parseUri(
      'sip:alice:secret@atlanta.example.com:5070;transport=tcp;LR;Maddr=239.255.255.1?subject=project&priority=urgent',
    );
    expect(u.scheme).toBe('sip');
    expect(u.user).toBe('alice');
    expect(u.password).toBe('secret');
    expect(u.host).toBe('atlanta.example.com');
    expect(u.port).toBe(5070);
    expect({ ...u.params }).toEqual({ transport: 'tcp', lr: null, maddr: '239.255.255.1' });
    expect({ ...u.headers }).toEqual({ subject: 'project', priority: 'urgent' });
  });

  it('parses a host-only sips URI with no port', () => {
    const u = parseUri('SIPS:Biloxi.Example.COM');
    expect(u.scheme).toBe('sips');
    expect(u.user).toBeUndefined();
    expect(u.host).toBe('Biloxi.Example.COM');
    expect(u.port).toBeUndefined();
  });

  it('keeps IPv6 references with their brackets', () => {
    const u = parseUri('sip:bob@[2001:db8::1]:5060;transport=udp');
    expect(u.host).toBe('[2001:db8::1]');
    expect(u.port).toBe(5060);
    expect(parseUri('sip:[::ffff:192.0.2.1]').host).toBe('[::ffff:192.0.2.1]');
  });

  it('preserves escaped characters in the user part as written', () => {
    expect(parseUri('sip:sips%3Auser%40example.com@example.net').user).toBe('sips%3Auser%40example.com');
    expect(parseUri('sip:null-%00-null@example.com').user).toBe('null-%00-null');
  });

  it('allows user-unreserved characters including ; and ? in the user part', () => {
    const u = parseUri('sip:+12125551212;phone-context=example.com@gw.example.com;user=phone');
    expect(u.user).toBe('+12125551212;phone-context=example.com');
    expect(u.host).toBe('gw.example.com');
    expect(u.params.user).toBe('phone');
  });

  it('parses tel URIs with the number as user', () => {
    const u = parseUri('tel:+1-201-555-0123;Phone-Context=example.com');
    expect(u.scheme).toBe('tel');
    expect(u.user).toBe('+1-201-555-0123');
    expect(u.host).toBe('');
    expect(u.params['phone-context']).toBe('example.com');
    expect(formatUri(u)).toBe('tel:+1-201-555-0123;phone-context=example.com');
  });

  it('keeps unknown schemes opaque', () => {
    const u = parseUri('urn:service:sos');
    expect(u.scheme).toBe('urn');
    expect(u.host).toBe('service:sos');
    expect(formatUri(u)).toBe('urn:service:sos');
    expect(formatUri(parseUri('mailto:a@example.com'))).toBe('mailto:a@example.com');
  });

  it('treats hostile parameter names as plain keys', () => {
    const u = parseUri('sip:a@b;__proto__=x;constructor');
    // biome-ignore lint/suspicious/noProto: the point of the test: a `__proto__` URI parameter is plain data
    expect(u.params.__proto__).toBe('x');
    expect(u.params.constructor).toBeNull();
    expect(u.params.toString).toBeUndefined();
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('round-trips through formatUri', () => {
    for (const text of [
      'sip:alice@atlanta.example.com',
      'sips:alice:pw@atlanta.example.com:5061;transport=tls;lr',
      'sip:[2001:db8::1]:5060;maddr=[2001:db8::2]',
      'sip:%61lice@example.com?Replaces=abc%40def',
      'sip:example.com;lr',
    ]) {
      expect(formatUri(parseUri(text))).toBe(text);
    }
  });

  it.each([
    ['', 'empty URI'],
    ['sip:', 'empty URI'],
    ['sip:user@', 'bad URI host'],
    ['sip:@host', 'bad URI user part'],
    ['sip:host:99999', 'bad URI port'],
    ['sip:host:', 'bad URI port'],
    ['sip:host:50a', 'bad URI port'],
    ['sip:us er@host', 'invalid character in URI'],
    ['<sip:a@b>', 'invalid character in URI'],
    ['1sip:a@b', 'bad URI scheme'],
    ['no-colon', 'bad URI scheme'],
    ['sip:[::1', 'bad URI host'],
    ['sip:[zz::1]', 'bad URI host'],
    ['sip:bad%zzuser@host', 'bad URI user part'],
    ['sip:a@ho!st', 'bad URI host'],
    ['sip:a@host;=x', 'bad URI parameter'],
    ['sip:a@[::1]x', 'bad URI'],
  ])('rejects %j (%s)', (text, reason) => {
    let caught: unknown;
    try {
      parseUri(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SipParseError);
    expect((caught as SipParseError).reason).toBe(reason);
  });
});
