import { describe, expect, it } from 'vitest';
import { KallglotError } from '../../src/kallglot/errors.ts';
import { onSessionFailure } from '../../src/sessions/failure-policy.ts';

describe('session failure policy', () => {
  it('maps Kallglot errors to fallback or busy by policy', () => {
    const rl = new KallglotError('rl', { status: 429, code: 'rate_limit_exceeded', retryAfterMs: 2500 });
    expect(onSessionFailure(rl, 'fallback')).toEqual({ action: 'fallback', reason: 'rate_limit_exceeded' });
    expect(onSessionFailure(rl, 'busy')).toEqual({ action: 'busy', reason: 'rate_limit_exceeded', retryAfterSec: 3 });
    const credits = new KallglotError('402', { status: 402, code: 'insufficient_api_credits' });
    expect(onSessionFailure(credits, 'busy')).toEqual({ action: 'fallback', reason: 'insufficient_api_credits' });
    expect(onSessionFailure(new Error('boom'), 'busy')).toEqual({ action: 'fallback', reason: 'kallglot_error' });
  });
});
