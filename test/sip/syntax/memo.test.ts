/**
 * The shortcuts in the syntax helpers answer exactly as the full parse: getTag's ring of recent values (From/To asked
 * for many times per message) and splitHeaderList's single-value path, and the token table of the lexer.
 */
import { describe, expect, it } from 'vitest';
import { getTag, parseNameAddrWithTag } from '../../../src/sip/syntax/address.ts';
import { isToken, isTokenChar, splitHeaderList, tokenEnd } from '../../../src/sip/syntax/lex.ts';

describe('getTag', () => {
  it('answers the same for values seen before, after many others, and for unparseable ones', () => {
    const values = Array.from({ length: 40 }, (_, i) => `<sip:u${i}@x>${i % 3 ? `;tag=t${i}` : ''}`);
    const expected = values.map((_, i) => (i % 3 ? `t${i}` : undefined));
    for (let round = 0; round < 3; round++) {
      for (const [i, v] of values.entries()) expect(getTag(v)).toBe(expected[i]);
      for (const v of values.slice(-5)) expect(getTag(v)).toBe(expected[values.indexOf(v)]);
    }
    for (const broken of ['', '<sip:unterminated', '"open quote <sip:a@b>;tag=1', 'sip:a@b;tag=']) {
      expect(getTag(broken)).toBeUndefined();
      expect(getTag(broken)).toBeUndefined();
    }
  });

  it('learns the tags of the values the parser checked', () => {
    expect(parseNameAddrWithTag('"A" <sip:a@b>;tag=abc').params.tag).toBe('abc');
    expect(getTag('"A" <sip:a@b>;tag=abc')).toBe('abc');
    expect(() => parseNameAddrWithTag('<sip:a@b')).toThrow();
    expect(getTag('<sip:a@b')).toBeUndefined();
  });
});

describe('lexer', () => {
  it('splits a list with or without commas as the general scan does', () => {
    expect(splitHeaderList('  <sip:a@b>  ')).toEqual(['<sip:a@b>']);
    expect(splitHeaderList('   ')).toEqual([]);
    expect(splitHeaderList('')).toEqual([]);
    expect(splitHeaderList('"x, y" <sip:a@b>, <sip:c@d;p=1,2>, ')).toEqual(['"x, y" <sip:a@b>', '<sip:c@d;p=1,2>']);
  });

  it('knows the token characters of RFC 3261 §25.1', () => {
    const token = "azAZ09-.!%*_+`'~";
    for (const ch of token) expect(isTokenChar(ch), ch).toBe(true);
    for (const ch of ' \t:;,"<>()[]/\\@=?{}é\u0000\u007f') expect(isTokenChar(ch), ch).toBe(false);
    expect(isToken(token)).toBe(true);
    expect(isToken('INVITE ')).toBe(false);
    expect(isToken('')).toBe(false);
    expect(tokenEnd('branch=z9', 0)).toBe(6);
    expect(tokenEnd('abc', 3)).toBe(3);
  });
});
