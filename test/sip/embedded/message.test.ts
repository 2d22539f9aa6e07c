/**
 * SipHeaders: lookups compare precomputed keys (compact forms expanded, case ignored), every edit keeps the names
 * and their keys in step, and `lines()` handed out before a rewrite (set, delete) keeps what it showed. Header names
 * that are also Object property names are plain headers.
 */
import { describe, expect, it } from 'vitest';
import { SipHeaders, createRequest, headerKey, normalizeHeaderName } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { INVITE } from './sip-samples.ts';

describe('header names', () => {
  it('expands compact forms and writes known names canonically, others as they came', () => {
    expect(['v', 'V', 'VIA', 'via'].map(normalizeHeaderName)).toEqual(['Via', 'Via', 'Via', 'Via']);
    expect(normalizeHeaderName('call-id')).toBe('Call-ID');
    expect(normalizeHeaderName('i')).toBe('Call-ID');
    expect(normalizeHeaderName('X-Odd-CASE')).toBe('X-Odd-CASE');
    expect(headerKey('X-Odd-CASE')).toBe('x-odd-case');
    expect(headerKey('l')).toBe('content-length');
  });

  it('treats constructor, __proto__ and toString as ordinary header names', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(normalizeHeaderName(name)).toBe(name);
      const text = INVITE.toString('latin1').replace('\r\n', `\r\n${name}: x\r\n`);
      const parsed = parseMessage(Buffer.from(text, 'latin1'));
      expect(parsed.ok, name).toBe(true);
      if (parsed.ok) expect(parsed.message.headers.get(name.toUpperCase())).toBe('x');
    }
  });

  it('still answers for names never seen before once many spellings were cached', () => {
    const h = new SipHeaders();
    for (let i = 0; i < 3000; i++) h.append(`X-Scan-${i}`, String(i));
    expect(h.get('x-scan-2999')).toBe('2999');
    expect(h.get('X-SCAN-0')).toBe('0');
    expect(h.lines()).toHaveLength(3000);
  });
});

describe('SipHeaders', () => {
  const sample = () =>
    new SipHeaders([
      ['v', 'SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2'],
      ['From', '<sip:a@x>;tag=1'],
      ['VIA', 'SIP/2.0/UDP c;branch=z9hG4bK3'],
      ['X-A', '1'],
      ['x-a', '2'],
    ]);

  it('finds headers whatever their spelling, splitting list headers only', () => {
    const h = sample();
    expect(h.get('Via')).toBe('SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2');
    expect(h.getAll('v')).toEqual([
      'SIP/2.0/UDP a;branch=z9hG4bK1',
      'SIP/2.0/UDP b;branch=z9hG4bK2',
      'SIP/2.0/UDP c;branch=z9hG4bK3',
    ]);
    expect(h.getAll('X-A')).toEqual(['1', '2']);
    expect(h.has('f')).toBe(true);
    expect(h.has('To')).toBe(false);
    expect(h.get('To')).toBeUndefined();
    expect(h.lines().map(([n]) => n)).toEqual(['Via', 'From', 'Via', 'X-A', 'x-a']);
    expect(h.keys()).toEqual(['via', 'from', 'via', 'x-a', 'x-a']);
  });

  it('keeps names and keys in step through prepend, removeFirst, set and delete', () => {
    const h = sample();
    h.removeFirst('Via'); // the first of two comma-joined values
    h.prepend('v', 'SIP/2.0/UDP top;branch=z9hG4bK0');
    expect(h.getAll('Via')[0]).toBe('SIP/2.0/UDP top;branch=z9hG4bK0');
    h.removeFirst('Via'); // a whole line
    h.removeFirst('Via');
    expect(h.getAll('Via')).toEqual(['SIP/2.0/UDP c;branch=z9hG4bK3']);
    h.set('x-A', '3');
    expect(h.lines()).toEqual([
      ['From', '<sip:a@x>;tag=1'],
      ['Via', 'SIP/2.0/UDP c;branch=z9hG4bK3'],
      ['x-A', '3'],
    ]);
    h.set('Call-ID', 'new@x');
    h.delete('via');
    expect(h.keys()).toEqual(['from', 'x-a', 'call-id']);
    expect(h.get('i')).toBe('new@x');
    const copy = h.clone();
    copy.append('To', '<sip:b@x>');
    expect(h.has('To')).toBe(false);
    expect(copy.keys()).toEqual(['from', 'x-a', 'call-id', 'to']);
  });

  it('leaves a lines() list handed out before set or delete as it was', () => {
    const h = sample();
    const before = h.lines();
    h.set('X-A', 'only');
    h.delete('From');
    expect(before).toHaveLength(5);
    expect(h.lines()).toHaveLength(3);
    const again = h.lines();
    h.set('X-New', 'appended by set');
    expect(again).toHaveLength(3);
  });

  it('serializes with one Content-Length, recomputed, wherever the stale one was', () => {
    const h = new SipHeaders([
      ['l', '999'],
      ['Content-Length', '7'],
      ['X-B', 'b'],
    ]);
    const wire = serializeMessage(createRequest('MESSAGE', 'sip:b@x', h, Buffer.from('body')));
    expect(wire.toString('latin1')).toBe('MESSAGE sip:b@x SIP/2.0\r\nContent-Length: 4\r\nX-B: b\r\n\r\nbody');
  });
});
