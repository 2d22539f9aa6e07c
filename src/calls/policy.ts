/**
 * The rules that decide where a call goes next. One place, so "fall back or not" is never decided ad hoc.
 */
import type { HeaderList } from '../sip/port.ts';

/**
 * A translated-leg failure after which we must NOT try the direct route (jambonz's crank-back rule):
 * the callee's own answer (486 Busy Here, 600 Busy Everywhere, 603 Decline) and the caller's cancel (487).
 * Everything else (404, 408, 480, 5xx, other 6xx, local timeouts and transport errors) falls back.
 */
export function isFinalFailure(status: number): boolean {
  return status === 486 || status === 487 || status === 600 || status === 603;
}

/**
 * The status the PBX gets when the last route failed. A 401/407 challenges the gateway's own Telnyx credentials: the
 * PBX cannot answer it (and it would arrive without its WWW-/Proxy-Authenticate), so it becomes 503.
 */
export function callerFailure(status: number, reason: string): { status: number; reason: string } {
  return status === 401 || status === 407 ? { status: 503, reason: 'Service Unavailable' } : { status, reason };
}

/** Fill `{name}` placeholders of a Request-URI template; values are URI-escaped as a SIP user part. */
export function fillUriTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (_m, key: string) => {
    const v = values[key];
    if (v === undefined) throw new Error(`URI template ${template} uses unknown placeholder {${key}}`);
    return key === 'domain' ? v : escapeUser(v);
  });
}

/** RFC 3261 user part: unreserved / escaped / user-unreserved ("&=+$,;?/") — escape anything else. */
function escapeUser(v: string): string {
  return v.replace(/[^A-Za-z0-9\-_.!~*'()&=+$,;?/]/g, (c) =>
    [...Buffer.from(c, 'utf8')].map((b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''),
  );
}

/** Headers copied from the PBX INVITE to the Telnyx leg. Never Via/From/To/Call-ID/CSeq/Contact/Route/Session-Expires. */
export function passThroughInviteHeaders(headers: HeaderList): HeaderList {
  const out: Array<[string, string]> = []; // one pass, one regex a header: this runs for every outbound INVITE
  for (const [n, v] of headers) if (INVITE_PASS_THROUGH.test(n)) out.push([n, v]);
  return out;
}

/** X- headers but our own session id (we set it), and the identity and diversion headers a PBX relies on. */
const INVITE_PASS_THROUGH =
  /^(?:x-(?!kallglot-session-id$)|p-asserted-identity$|p-preferred-identity$|diversion$|privacy$|history-info$)/i;

/**
 * RFC 4028 session timers, passed through end to end: the interval the PBX asked for (Session-Expires), so the
 * gateway can hang up a call whose refreshes stopped (a lost BYE must not leak a session). Undefined when absent.
 */
export function sessionTimerHeaders(headers: HeaderList): { intervalSec?: number; headers: HeaderList } {
  const se = sessionExpires(headers);
  if (!se) return { headers: [] };
  const out: Array<[string, string]> = [
    ['Session-Expires', se.value],
    ['Supported', 'timer'],
  ];
  const minSe = headerValue(headers, 'min-se');
  if (minSe) out.push(['Min-SE', minSe.trim()]);
  return { intervalSec: se.intervalSec, headers: out };
}

/**
 * Session timers as the far end accepted them in its 2xx: the headers to put on our 2xx to the PBX (so the PBX
 * knows the interval and who refreshes) and the interval for the watchdog. Nothing when the 2xx has no
 * Session-Expires: timers are then not in force end to end and the gateway must not expect refreshes.
 */
export function sessionTimerAnswer(headers: HeaderList): { intervalSec?: number; headers: HeaderList } {
  const se = sessionExpires(headers);
  if (!se) return { headers: [] };
  const out: Array<[string, string]> = [['Session-Expires', se.value]];
  if (/\btimer\b/i.test(headerValue(headers, 'require') ?? '')) out.push(['Require', 'timer']);
  return { intervalSec: se.intervalSec, headers: out };
}

function headerValue(headers: HeaderList, lowerName: string): string | undefined {
  return headers.find(([n]) => n.toLowerCase() === lowerName)?.[1];
}

/** Session-Expires (or its compact form `x`) with a positive delta-seconds, else undefined. */
function sessionExpires(headers: HeaderList): { value: string; intervalSec: number } | undefined {
  const value = headerValue(headers, 'session-expires') ?? headerValue(headers, 'x');
  if (value === undefined) return undefined;
  const intervalSec = Number.parseInt(value, 10);
  return Number.isFinite(intervalSec) && intervalSec > 0 ? { value: value.trim(), intervalSec } : undefined;
}

/** Headers copied on BYE/CANCEL between legs. */
export function passThroughEndHeaders(headers: HeaderList): HeaderList {
  return headers.filter(([n]) => /^(reason$|x-)/i.test(n)).map(([n, v]) => [n, v]);
}

/** Headers copied on in-dialog requests and their responses (re-INVITE, UPDATE, INFO, ...). */
export function passThroughDialogHeaders(headers: HeaderList): HeaderList {
  const out: Array<[string, string]> = [];
  for (const [n, v] of headers) {
    if (
      /^(x-|event$|subscription-state$|info-package$|content-disposition$|allow-events$|reason$|refer-to$|referred-by$|session-expires$|min-se$)/i.test(
        n,
      )
    ) {
      out.push([n, v]);
    } else if (/^(require|supported)$/i.test(n) && /\btimer\b/i.test(v)) {
      // Session-timer refreshes must keep their negotiation end to end (RFC 4028 §7); other option tags (100rel…)
      // are features of one hop that the gateway does not implement, so only `timer` crosses.
      out.push([n, 'timer']);
    }
  }
  return out;
}

/**
 * SIP extensions (option tags) the gateway supports end to end: session timers, relayed across the B2BUA. Not
 * `100rel` (RFC 3262): provisional responses are not sent reliably and PRACK is not relayed, so a caller that
 * *requires* it gets 420 rather than a call whose early media silently misbehaves.
 */
export const SUPPORTED_EXTENSIONS = new Set(['timer']);

/** RFC 3261 §8.2.2.3: the option tags of the request's Require that we do not support (empty: go ahead). */
export function unsupportedRequired(headers: HeaderList): string[] {
  const required = headers
    .filter(([n]) => n.toLowerCase() === 'require')
    .flatMap(([, v]) => v.split(','))
    .map((t) => t.trim().toLowerCase())
    .filter(Boolean);
  return [...new Set(required.filter((t) => !SUPPORTED_EXTENSIONS.has(t)))];
}
