/**
 * Reading what Telnyx posts: TeXML webhooks (form-encoded CamelCase fields, or JSON with the same names), Call Control
 * event envelopes (JSON `{ data: { id, event_type, payload } }`), and the client_state we attach to calls we dial.
 * Everything here is total: malformed input gives undefined, never an exception.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isObject, safeJson } from '../json.ts';

export type Params = Record<string, string>;

/** Flat string fields of a form-encoded or JSON body; undefined when the body is neither. */
export function parseParams(rawBody: Buffer, headers: IncomingHttpHeaders): Params | undefined {
  const type = String(headers['content-type'] ?? '').toLowerCase();
  const text = rawBody.toString('utf8');
  const looksJson = type.includes('json') || (!type.includes('x-www-form-urlencoded') && /^\s*\{/.test(text));
  if (looksJson) {
    const parsed = safeJson(text);
    if (!isObject(parsed)) return undefined;
    const out: Params = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v === 'string') out[k] = v;
      else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
    }
    return out;
  }
  const out: Params = {};
  for (const [k, v] of new URLSearchParams(text)) if (!Object.hasOwn(out, k)) out[k] = v;
  return out;
}

export interface ClientState {
  session_id?: string;
  /** Gateway-generated id of an outbound call request (the call_control_id is only known after the dial). */
  call_id?: string;
  /** 'answer': the dial (or the answer) carried no stream; start it on call.answered. */
  stream?: 'dial' | 'answer';
  /** A call that arrived on the Call Control application (inbound.ts); absent: a call the gateway dialled. */
  direction?: 'inbound';
  /** The rule asked for a recording: start it once the call is answered (state survives a restart this way). */
  record?: true;
  /** A notice is being spoken before an untranslated transfer: transfer on call.speak.ended. */
  next?: 'transfer';
}

export function encodeClientState(state: ClientState): string {
  return Buffer.from(JSON.stringify(state), 'utf8').toString('base64');
}

/** client_state may be anything another application set on the call: only accept our own shape. */
export function decodeClientState(b64: unknown): ClientState | undefined {
  if (typeof b64 !== 'string' || b64 === '') return undefined;
  const parsed = safeJson(Buffer.from(b64, 'base64').toString('utf8'));
  if (!isObject(parsed)) return undefined;
  const out: ClientState = {};
  if (typeof parsed.session_id === 'string' && ID.test(parsed.session_id)) out.session_id = parsed.session_id;
  if (typeof parsed.call_id === 'string' && ID.test(parsed.call_id)) out.call_id = parsed.call_id;
  if (parsed.stream === 'dial' || parsed.stream === 'answer') out.stream = parsed.stream;
  if (parsed.direction === 'inbound') out.direction = 'inbound';
  if (parsed.record === true) out.record = true;
  if (parsed.next === 'transfer') out.next = 'transfer';
  return out.session_id || out.call_id ? out : undefined;
}

const ID = /^[A-Za-z0-9_.:-]{1,200}$/;

export interface CallControlEvent {
  /** Event id: the same on every redelivery of one event, so it is the dedupe key. */
  id: string | undefined;
  eventType: string;
  occurredAt: string | undefined;
  payload: Record<string, unknown>;
  callControlId: string | undefined;
  callSessionId: string | undefined;
  clientState: ClientState | undefined;
}

/** The `data` of a Call Control webhook; undefined when the body is not one. */
export function parseCallControlEvent(body: unknown): CallControlEvent | undefined {
  if (!isObject(body) || !isObject(body.data)) return undefined;
  const data = body.data;
  if (typeof data.event_type !== 'string' || data.event_type === '') return undefined;
  const payload = isObject(data.payload) ? data.payload : {};
  return {
    id: str(data.id),
    eventType: data.event_type,
    occurredAt: str(data.occurred_at) ?? str(payload.occurred_at),
    payload,
    callControlId: str(payload.call_control_id),
    callSessionId: str(payload.call_session_id),
    clientState: decodeClientState(payload.client_state),
  };
}

/** `sip:+4930123@host;user=phone` → `+4930123`; plain numbers pass through. Routing rules match user parts. */
export function userPart(address: string): string {
  const m = /^sips?:([^@;>]+)@/i.exec(address.trim().replace(/^<|>$/g, ''));
  if (!m) return address.trim();
  try {
    return decodeURIComponent(m[1]);
  } catch {
    return m[1];
  }
}

export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}
