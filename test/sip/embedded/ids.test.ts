import { describe, expect, it } from 'vitest';
import { newCallId, newTag, randomHex } from '../../../src/sip/embedded/ids.ts';
import { newBranch } from '../../../src/sip/embedded/transaction-helpers.ts';

describe('identifiers', () => {
  it('are well formed and unique across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) seen.add(newTag()); // 30 KB of randomness: several refills of the 4 KiB pool
    expect(seen.size).toBe(5000);
    expect(newTag()).toMatch(/^[0-9a-f]{12}$/);
    expect(newCallId('192.0.2.1')).toMatch(/^[0-9a-f]{24}@192\.0\.2\.1$/);
    expect(newBranch()).toMatch(/^z9hG4bK[0-9a-f]{20}$/);
    expect(randomHex(4096)).toHaveLength(8192);
  });
});
