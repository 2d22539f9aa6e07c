/** Identifiers the UA core generates: tags, Call-IDs (RFC 3261 §19.3 asks for global uniqueness and randomness). */
import { randomBytes } from 'node:crypto';

export function newTag(): string {
  return randomBytes(6).toString('hex');
}

export function newCallId(host: string): string {
  return `${randomBytes(12).toString('hex')}@${host}`;
}
