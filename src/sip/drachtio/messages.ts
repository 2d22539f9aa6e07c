/**
 * Conversions between the port's vocabulary (header lists, Buffers, SipError) and drachtio-srf's (header objects,
 * string bodies, its own SipError carrying the failing response in `res`).
 */
import type { HeaderList, ResponseOptions, SipTransportName } from '../port.ts';
import { SipError } from '../port.ts';
import type { SrfHeaders, SrfMessage, SrfServerResponse } from './srf-types.ts';
import type { AdapterContext } from './traffic.ts';

/** Headers drachtio-server owns (or we set explicitly); callers' copies are dropped, as the embedded engine does. */
const ENGINE_HEADERS = new Set([
  'via',
  'from',
  'to',
  'call-id',
  'cseq',
  'contact',
  'content-length',
  'content-type',
  'record-route',
  'route',
  'max-forwards',
  'authorization',
  'proxy-authorization',
  'www-authenticate',
  'proxy-authenticate',
  'user-agent',
  'server',
]);

/**
 * Header list -> drachtio header object. Repeated names are comma-joined, which is what drachtio itself does when a
 * header is set twice; `extra` (Content-Type, From, ...) is added after filtering and wins.
 */
export function toSrfHeaders(list: HeaderList | undefined, extra: SrfHeaders = {}): SrfHeaders {
  const out: SrfHeaders = {};
  const nameOf = new Map<string, string>();
  for (const [name, value] of list ?? []) {
    const key = name.toLowerCase();
    if (ENGINE_HEADERS.has(key)) continue;
    const existing = nameOf.get(key);
    if (existing === undefined) {
      nameOf.set(key, name);
      out[name] = value;
    } else {
      out[existing] = `${out[existing]}, ${value}`;
    }
  }
  for (const [name, value] of Object.entries(extra)) {
    const existing = nameOf.get(name.toLowerCase());
    if (existing !== undefined) delete out[existing];
    out[name] = value;
  }
  return out;
}

export function fromSrfHeaders(headers: SrfHeaders | undefined): HeaderList {
  return Object.entries(headers ?? {}).map(([n, v]) => [n, String(v)] as const);
}

export function headerAccessOf(msg: SrfMessage): { header(name: string): string | undefined; headers(): HeaderList } {
  return {
    header: (name) => msg.get(name) ?? undefined,
    headers: () => fromSrfHeaders(msg.headers),
  };
}

export function bodyOf(msg: SrfMessage | undefined): Buffer {
  return Buffer.from(msg?.body ?? '', 'utf8');
}

/** Content-Type to send with a body (SDP unless told otherwise); none without a body. */
export function contentTypeHeader(body: Buffer | undefined, contentType: string | undefined): SrfHeaders {
  return body?.length ? { 'Content-Type': contentType ?? 'application/sdp' } : {};
}

/**
 * Send a response through drachtio. res.send throws on a status code its table does not know (e.g. 499): fall back
 * to the class code (400, 500, ...) with the caller's reason so the peer still gets a final answer.
 */
export function sendResponse(
  res: SrfServerResponse,
  status: number,
  opts: ResponseOptions,
  extra: SrfHeaders,
  ctx: AdapterContext,
): void {
  const { logger } = ctx;
  // Challenge headers are dropped from what a request passes on (drachtio-srf answers challenges), but a challenge
  // of ours (a 401/407 to the PBX, PBX_AUTH_USERS) is the response's point.
  const challenge = Object.fromEntries((opts.headers ?? []).filter(([n]) => /^(www|proxy)-authenticate$/i.test(n)));
  const payload = {
    headers: toSrfHeaders(opts.headers, { ...challenge, ...extra, ...contentTypeHeader(opts.body, opts.contentType) }),
    body: opts.body?.length ? opts.body.toString('utf8') : undefined,
  };
  const send = (code: number) => (opts.reason ? res.send(code, opts.reason, payload) : res.send(code, payload));
  try {
    send(status);
    ctx.traffic.out(status);
  } catch (err) {
    const fallback = Math.floor(status / 100) * 100;
    logger.warn({ err, status, fallback }, 'drachtio refused the response status; sending the class code');
    try {
      if (fallback !== status) {
        send(fallback);
        ctx.traffic.out(fallback);
      }
    } catch (err2) {
      logger.error({ err: err2, status }, 'cannot send response');
    }
  }
}

/**
 * drachtio's SipError (status, reason, res) -> ours. Anything else (no connection to drachtio-server, a broken
 * response) is a local transport failure: 503, as the embedded engine reports an unreachable destination.
 */
export function toSipError(err: unknown): SipError {
  if (err instanceof SipError) return err;
  const e = err as { status?: unknown; reason?: unknown; res?: SrfMessage & { reason?: string } } | undefined;
  if (e && typeof e.status === 'number' && e.status >= 300 && e.status <= 699) {
    const reason = typeof e.reason === 'string' ? e.reason : (e.res?.reason ?? 'Request Failed');
    return new SipError(e.status, reason, e.res ? fromSrfHeaders(e.res.headers) : []);
  }
  return new SipError(503, 'Service Unavailable');
}

/** The port knows UDP, TCP and TLS; the other connection-oriented drachtio transports (ws, wss) count as tcp. */
export function transportOf(protocol: string | undefined): SipTransportName {
  const p = (protocol ?? 'udp').toLowerCase();
  return p === 'udp' || p === 'tls' ? p : 'tcp';
}
