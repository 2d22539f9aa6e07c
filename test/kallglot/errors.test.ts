import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  KallglotError,
  attemptOutcomeUnknown,
  isAccountProblem,
  isRateLimited,
  isRetryable,
} from '../../src/kallglot/errors.ts';
import { parseRetryAfter } from '../../src/kallglot/client.ts';

const httpError = (status: number, code = `http_${status}`): KallglotError => new KallglotError('x', { status, code });

describe('Kallglot error predicates', () => {
  it('classify local errors', () => {
    expect(isRetryable(new KallglotError('x', { code: 'network_error' }))).toBe(true);
    expect(isRetryable(new KallglotError('x', { code: 'timeout' }))).toBe(true);
    expect(isRetryable(new KallglotError('x', { code: 'deadline_exceeded' }))).toBe(false);
    expect(isRetryable(new KallglotError('x', { code: 'aborted' }))).toBe(false);
    expect(isRetryable(new Error('not ours'))).toBe(false);
  });

  it('retry 429 and 5xx except 501, never other 4xx', () => {
    fc.assert(
      fc.property(fc.integer({ min: 400, max: 599 }), (status) => {
        const expected = status === 429 || (status >= 500 && status !== 501);
        expect(isRetryable(httpError(status))).toBe(expected);
      }),
    );
  });

  it('flag 401/402/403 as account problems and 429 as rate limiting', () => {
    expect([401, 402, 403].map((s) => isAccountProblem(httpError(s)))).toEqual([true, true, true]);
    expect([400, 404, 429, 500].map((s) => isAccountProblem(httpError(s)))).toEqual([false, false, false, false]);
    expect(isRateLimited(httpError(429, 'rate_limit_exceeded'))).toBe(true);
    expect(isRateLimited(httpError(503))).toBe(false);
  });

  it('keep the error fields', () => {
    const e = new KallglotError('m', {
      status: 429,
      code: 'rate_limit_exceeded',
      type: 'rate_limit_error',
      requestId: 'req_1',
      retryAfterMs: 2000,
    });
    expect(e).toBeInstanceOf(Error);
    expect(e).toMatchObject({
      name: 'KallglotError',
      status: 429,
      code: 'rate_limit_exceeded',
      type: 'rate_limit_error',
      requestId: 'req_1',
      retryAfterMs: 2000,
    });
  });
});

describe('parseRetryAfter', () => {
  it('reads delta-seconds and HTTP dates', () => {
    expect(parseRetryAfter('2')).toBe(2000);
    expect(parseRetryAfter(' 0 ')).toBe(0);
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('attemptOutcomeUnknown: may a failed attempt have taken effect at Kallglot?', () => {
  const local = (code: string, cause?: unknown) => new KallglotError('x', { code, cause });

  it('no answer after sending: unknown; nothing sent (DNS, connect, TLS, client pool): known', () => {
    expect(attemptOutcomeUnknown(local('timeout'))).toBe(true);
    expect(attemptOutcomeUnknown(local('deadline_exceeded'))).toBe(true);
    expect(attemptOutcomeUnknown(local('aborted'))).toBe(true);
    expect(
      attemptOutcomeUnknown(local('network_error', Object.assign(new Error('reset'), { code: 'ECONNRESET' }))),
    ).toBe(true);
    expect(
      attemptOutcomeUnknown(local('network_error', Object.assign(new Error('x'), { code: 'UND_ERR_SOCKET' }))),
    ).toBe(true);
    expect(attemptOutcomeUnknown(local('network_error', Object.assign(new Error('x'), { code: 'ECONNREFUSED' })))).toBe(
      false,
    );
    const refusedTwice = new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]);
    expect(attemptOutcomeUnknown(local('network_error', refusedTwice))).toBe(false);
    expect(attemptOutcomeUnknown(local('network_error', Object.assign(new Error('x'), { code: 'ENOTFOUND' })))).toBe(
      false,
    );
    expect(attemptOutcomeUnknown(local('client_pool_exhausted'))).toBe(false);
  });

  it('statuses: 2xx without a session and 5xx but 501/503 unknown; every 4xx known', () => {
    fc.assert(
      fc.property(fc.integer({ min: 200, max: 599 }), (status) => {
        const expected = status < 300 || (status >= 500 && status !== 501 && status !== 503);
        expect(attemptOutcomeUnknown(httpError(status))).toBe(expected);
      }),
    );
  });
});
