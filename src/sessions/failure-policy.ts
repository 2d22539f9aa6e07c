/**
 * What a call does when its Kallglot session cannot be created. One rule for every path that creates sessions (the
 * SIP B2BUA, TeXML, Call Control), so "fall back or refuse" is never decided ad hoc.
 */
import { isKallglotError, isRateLimited } from '../kallglot/errors.ts';

export type SessionFailureAction =
  | { action: 'fallback'; reason: string }
  | { action: 'busy'; reason: string; retryAfterSec?: number };

/** Untranslated fallback, unless Kallglot is rate limiting and the operator chose to refuse calls then (busy). */
export function onSessionFailure(err: unknown, rateLimitPolicy: 'fallback' | 'busy'): SessionFailureAction {
  const reason = isKallglotError(err) ? err.code : 'kallglot_error';
  if (isRateLimited(err) && rateLimitPolicy === 'busy') {
    const retryAfterMs = isKallglotError(err) ? err.retryAfterMs : undefined;
    return {
      action: 'busy',
      reason,
      retryAfterSec: retryAfterMs ? Math.max(1, Math.ceil(retryAfterMs / 1000)) : undefined,
    };
  }
  return { action: 'fallback', reason };
}
