import { isObject } from '../json.ts';
/**
 * Kallglot REST API shapes as the gateway sees them (camelCase), plus the single place that turns a create request
 * into the wire body. The docs disagree on `provider` vs `routing` in the request: current docs say `routing` (and
 * `provider` only in responses), the older Telnyx guide this project started from sends `provider`. Both shapes are
 * built here only (KALLGLOT_REQUEST_STYLE picks one), so that choice stays in one spot.
 */

export type SessionMode = 'bidirectional_translation' | 'assistive_translation' | 'ai_agent' | 'help_chat_voice';

export const SESSION_MODES: readonly SessionMode[] = [
  'bidirectional_translation',
  'assistive_translation',
  'ai_agent',
  'help_chat_voice',
] as const;

export type EndReason = 'completed' | 'customer_hangup' | 'agent_hangup' | 'error' | 'timeout';

export const END_REASONS: readonly EndReason[] = [
  'completed',
  'customer_hangup',
  'agent_hangup',
  'error',
  'timeout',
] as const;

/**
 * How the create request selects telephony: `routing` (current docs; the default) or `provider` (the older guide's
 * `provider: { type: "telnyx", sip_uri }`). Kept switchable because the two sources disagree and only the live API
 * can tell which one it honours.
 */
export type RequestStyle = 'routing' | 'provider';

export const REQUEST_STYLES: readonly RequestStyle[] = ['routing', 'provider'] as const;

export interface SessionRouting {
  type?: 'sip';
  /** E.164 of a Kallglot-managed number. */
  phoneNumber?: string;
  /** `pcon_…`: a telephony account connected in the Kallglot portal. */
  connectionId?: string;
  direction?: 'inbound' | 'outbound';
}

export interface CreateSessionInput {
  mode: SessionMode;
  sourceLanguage?: string;
  targetLanguage?: string;
  /** Absent: `routing`. */
  requestStyle?: RequestStyle;
  /** Sent with the `routing` style only; the `provider` style carries nothing but `sipUri`. */
  routing?: SessionRouting;
  /**
   * The address Kallglot connects the other party to (a sip:, sips: or tel: URI), sent as `routing.sip_uri` or
   * `provider.sip_uri`. Current docs list no `sip_uri` under `routing`; it is sent there anyway so both styles name
   * the same party, and a server that ignores it loses nothing.
   */
  sipUri?: string;
  recording?: { enabled: boolean; channels?: 'dual' };
  metadata?: Record<string, string>;
  /** Sent as `Idempotency-Key` on every attempt, so retries never create a second session. */
  idempotencyKey: string;
}

export interface KallglotStream {
  url: string;
  token: string;
  expiresAt?: string;
}

export interface KallglotSession {
  id: string;
  status: string;
  mode: string;
  sourceLanguage?: string;
  targetLanguage?: string;
  stream?: KallglotStream;
  metadata?: Record<string, unknown>;
  createdAt?: string;
  endedAt?: string;
  endReason?: string;
  /** The parsed response body as received, for fields this type does not model. */
  raw: unknown;
}

/** JSON body of `POST /v1/sessions`. Undefined fields are left out rather than sent as null. */
export function buildCreateSessionBody(input: CreateSessionInput): Record<string, unknown> {
  const body: Record<string, unknown> = { mode: input.mode };
  if (input.sourceLanguage !== undefined) body.source_language = input.sourceLanguage;
  if (input.targetLanguage !== undefined) body.target_language = input.targetLanguage;
  if (input.requestStyle === 'provider') {
    // The older guide's shape: Telnyx is the carrier, the SIP URI the party to connect; no `routing` beside it.
    const provider: Record<string, string> = { type: 'telnyx' };
    if (input.sipUri !== undefined) provider.sip_uri = input.sipUri;
    body.provider = provider;
  } else {
    const routing = routingBody(input.routing ?? {}, input.sipUri);
    if (Object.keys(routing).length > 0) body.routing = routing;
  }
  if (input.recording !== undefined) {
    const recording: Record<string, unknown> = { enabled: input.recording.enabled };
    if (input.recording.channels !== undefined) recording.channels = input.recording.channels;
    body.recording = recording;
  }
  if (input.metadata !== undefined) body.metadata = { ...input.metadata };
  return body;
}

function routingBody(r: SessionRouting, sipUri: string | undefined): Record<string, string> {
  const routing: Record<string, string> = {};
  if (r.type !== undefined) routing.type = r.type;
  if (r.phoneNumber !== undefined) routing.phone_number = r.phoneNumber;
  if (r.connectionId !== undefined) routing.connection_id = r.connectionId;
  if (r.direction !== undefined) routing.direction = r.direction;
  if (sipUri !== undefined) routing.sip_uri = sipUri;
  return routing;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** Maps a response body to a session; undefined when the body is not a session (no string id/status). */
export function parseSession(raw: unknown): KallglotSession | undefined {
  if (!isObject(raw)) return undefined;
  const id = str(raw.id);
  const status = str(raw.status);
  if (id === undefined || status === undefined) return undefined;
  const session: KallglotSession = { id, status, mode: str(raw.mode) ?? '', raw };
  const sourceLanguage = str(raw.source_language);
  if (sourceLanguage !== undefined) session.sourceLanguage = sourceLanguage;
  const targetLanguage = str(raw.target_language);
  if (targetLanguage !== undefined) session.targetLanguage = targetLanguage;
  if (isObject(raw.stream)) {
    const url = str(raw.stream.url);
    const token = str(raw.stream.token);
    if (url !== undefined && token !== undefined) {
      session.stream = { url, token };
      const expiresAt = str(raw.stream.expires_at);
      if (expiresAt !== undefined) session.stream.expiresAt = expiresAt;
    }
  }
  if (isObject(raw.metadata)) session.metadata = raw.metadata;
  const createdAt = str(raw.created_at);
  if (createdAt !== undefined) session.createdAt = createdAt;
  const endedAt = str(raw.ended_at);
  if (endedAt !== undefined) session.endedAt = endedAt;
  const endReason = str(raw.end_reason);
  if (endReason !== undefined) session.endReason = endReason;
  return session;
}
