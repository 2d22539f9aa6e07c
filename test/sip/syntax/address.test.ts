import { describe, expect, it } from 'vitest';
import { formatNameAddr, getTag, parseGenericParams, parseNameAddr, withTag } from '../../../src/sip/syntax/address.ts';
import { SipParseError } from '../../../src/sip/syntax/errors.ts';

describe('parseNameAddr', () => {
  it('parses a quoted display name with escaped characters', () => {
    const a = parseNameAddr('"Bob \\"B\\" Smith \\\\ Jr" <sip:bob@x>;tag=abc');
    expect(a.displayName).toBe('Bob "B" Smith \\ Jr');
    expect(a.uri.user).toBe('bob');
    expect(a.rawUri).toBe('sip:bob@x');
    expect({ ...a.params }).toEqual({ tag: 'abc' });
  });

  it('parses an unquoted token display name', () => {
    const a = parseNameAddr('Bob  Smith <sip:bob@biloxi.example.com>');
    expect(a.displayName).toBe('Bob  Smith');
    expect(a.uri.host).toBe('biloxi.example.com');
  });

  it('accepts no space between display name and <', () => {
    const a = parseNameAddr('caller<sip:caller@example.com>;tag=323');
    expect(a.displayName).toBe('caller');
    expect(a.params.tag).toBe('323');
  });

  it('distinguishes an empty quoted display name from none', () => {
    expect(parseNameAddr('"" <sip:a@b>').displayName).toBe('');
    expect(parseNameAddr('<sip:a@b>').displayName).toBeUndefined();
  });

  it('keeps UTF-8 display names', () => {
    expect(parseNameAddr('"José Ñandú" <sip:j@x>').displayName).toBe('José Ñandú');
  });

  it('separates URI params from header params in <> form', () => {
    const a = parseNameAddr('<sip:p1.example.com;lr>;expires=3600 ; q = 0.7');
    expect(a.uri.params.lr).toBeNull();
    expect({ ...a.params }).toEqual({ expires: '3600', q: '0.7' });
  });

  it('gives ;params of a bare addr-spec to the header (RFC 3261 §20.10)', () => {
    const a = parseNameAddr('sip:bob@biloxi.example.com;tag=a48s');
    expect(a.displayName).toBeUndefined();
    expect(a.rawUri).toBe('sip:bob@biloxi.example.com');
    expect(Object.keys(a.uri.params)).toEqual([]);
    expect(a.params.tag).toBe('a48s');
  });

  it('keeps quoted header param values with their quotes, even with < inside', () => {
    const a = parseNameAddr(
      '<sip:a@192.0.2.1>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>";reg-id=1',
    );
    expect(a.params['+sip.instance']).toBe('"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"');
    expect(a.params['reg-id']).toBe('1');
  });

  it('accepts tel URIs', () => {
    expect(parseNameAddr('<tel:+15551234567>;tag=1').uri.user).toBe('+15551234567');
  });

  it.each([
    ['"Mr. J. User <sip:j.user@example.com>', 'unterminated quoted display name'],
    ['Bell, Alexander <sip:a.g.bell@bell-tel.com>;tag=43', 'bad display name'],
    ['"Bob" sip:bob@x', 'expected < after display name'],
    ['<sip:bob@x', 'unterminated <URI>'],
    ['sip:user@example.com?Route=%3Csip:sip.example.com%3E', 'URI with ? or , must be enclosed in <>'],
    ['sip:a@b, sip:c@d', 'URI with ? or , must be enclosed in <>'],
    ['sip:Bell of Hope @example.com', 'invalid character in URI'],
    ['<sip:bob@x> junk', 'unexpected character after parameters'],
    ['<sip:bob@x>;tag=', 'empty parameter value'],
    ['<sip:bob@x>;=1', 'empty parameter name'],
    ['<sip:bob@x>;p="open', 'unterminated quoted parameter value'],
    ['   ', 'empty address'],
  ])('rejects %j', (text, reason) => {
    let caught: unknown;
    try {
      parseNameAddr(text);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(SipParseError);
    expect((caught as SipParseError).reason).toBe(reason);
  });
});

describe('formatNameAddr', () => {
  it('always writes <uri> and re-escapes the display name', () => {
    const a = parseNameAddr('"Bob \\"B\\" Smith" <sip:bob@x>;tag=abc;lr');
    expect(formatNameAddr(a)).toBe('"Bob \\"B\\" Smith" <sip:bob@x>;tag=abc;lr');
    expect(formatNameAddr(parseNameAddr('sip:bob@x;tag=1'))).toBe('<sip:bob@x>;tag=1');
    expect(parseNameAddr(formatNameAddr(a))).toEqual(a);
  });
});

describe('parseGenericParams', () => {
  it('lowercases names and allows host values', () => {
    expect({ ...parseGenericParams(';Received=[2001:db8::9];RPORT') }).toEqual({
      received: '[2001:db8::9]',
      rport: null,
    });
  });
});

describe('getTag / withTag', () => {
  it('reads the header tag, not a URI param or display-name text', () => {
    expect(getTag('"a;tag=x" <sip:a@b;tag=u>;tag=real')).toBe('real');
    expect(getTag('<sip:a@b;tag=u>')).toBeUndefined();
    expect(getTag('sip:a@b;tag=bare')).toBe('bare');
    expect(getTag('not an address')).toBeUndefined();
  });

  it('appends a tag leaving the rest untouched', () => {
    expect(withTag('Bob <sip:bob@x>', 'abc')).toBe('Bob <sip:bob@x>;tag=abc');
    expect(withTag('sip:bob@x', 'abc')).toBe('sip:bob@x;tag=abc');
    expect(withTag('"a;tag=x" <sip:a@b;tag=u> ;foo=1  ', 't')).toBe('"a;tag=x" <sip:a@b;tag=u> ;foo=1;tag=t');
  });

  it('replaces an existing tag in place', () => {
    expect(withTag('Bob <sip:bob@x> ; TAG = old ;x=1', 'new')).toBe('Bob <sip:bob@x> ; TAG = new ;x=1');
    expect(withTag('sip:bob@x;tag=old;y', 'new')).toBe('sip:bob@x;tag=new;y');
    expect(withTag('<sip:bob@x>;tag;y', 'new')).toBe('<sip:bob@x>;tag=new;y');
    expect(getTag(withTag('<sip:bob@x>;tag=1', '2'))).toBe('2');
  });
});
