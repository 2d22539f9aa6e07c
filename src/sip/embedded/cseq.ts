/** CSeq header value (RFC 3261 §20.16): `1*DIGIT LWS Method`. */
import { SipParseError } from '../syntax/errors.ts';
import { isDigits, isToken, isWs } from '../syntax/lex.ts';

export interface CSeq {
  seq: number;
  method: string;
}

export function parseCSeq(value: string): CSeq {
  const s = value.trim();
  let i = 0;
  while (i < s.length && !isWs(s[i])) i++;
  const num = s.slice(0, i);
  // Leading zeros are legal, so bound the digit count loosely and check the value.
  if (!isDigits(num) || num.length > 32) throw new SipParseError('bad CSeq', 'bad sequence number');
  const seq = Number(num);
  if (seq > 0xffffffff) throw new SipParseError('bad CSeq', 'sequence number out of range');
  const method = s.slice(i).trim();
  if (i === s.length || !isToken(method)) throw new SipParseError('bad CSeq', 'bad method');
  return { seq, method };
}

export function formatCSeq(c: CSeq): string {
  return `${c.seq} ${c.method}`;
}
