/**
 * Identifiers the UA core generates: tags, branches, Call-IDs (RFC 3261 §19.3 asks for global uniqueness and
 * randomness). Each message needs a few; one getrandom() call per identifier showed in profiles at load, so the
 * bytes come from a pool refilled 4 KiB at a time (still the CSPRNG).
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.alloc(POOL_SIZE);
let offset = POOL_SIZE;

export function randomHex(bytes: number): string {
  if (offset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const hex = pool.toString('hex', offset, offset + bytes);
  offset += bytes;
  return hex;
}

export function newTag(): string {
  return randomHex(6);
}

export function newCallId(host: string): string {
  return `${randomHex(12)}@${host}`;
}
