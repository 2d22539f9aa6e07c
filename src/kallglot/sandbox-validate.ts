/**
 * Request validation for the Kallglot sandbox, following the documented field rules and error codes so the client
 * meets the same 400s it would from the real API. Both documented request shapes are accepted (`routing`, and the
 * older guide's `provider: { type: "telnyx", sip_uri }`), since the docs disagree on which one the API takes.
 */
import { SESSION_MODES, type RequestStyle } from './types.ts';
import { isObject } from '../json.ts';

const LANGUAGE_RE = /^[a-z]{2}(-[A-Z]{2})?$/;

/** An API error the sandbox answers with. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly param: string | undefined;
  constructor(status: number, code: string, message: string, param?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.param = param;
  }
}

export function parseJsonObject(raw: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw new HttpError(400, 'invalid_request', 'Request body must be valid JSON');
  }
  if (!isObject(parsed)) throw new HttpError(400, 'invalid_request', 'Request body must be a JSON object');
  return parsed;
}

export interface ValidCreate {
  mode: string;
  sourceLanguage: string | undefined;
  targetLanguage: string | undefined;
  /** Which request shape selected telephony; undefined when the body sent neither `routing` nor `provider`. */
  requestStyle: RequestStyle | undefined;
  routing: Record<string, unknown> | undefined;
  provider: Record<string, unknown> | undefined;
  /** `routing.sip_uri` or `provider.sip_uri`: the party the session is to be connected to. */
  sipUri: string | undefined;
  recording: Record<string, unknown> | undefined;
  metadata: Record<string, unknown> | undefined;
}

/** sip:/sips: with an optional user part, a host and optional parameters; tel: a (global or local) number. */
const SIP_URI_RE = /^sips?:(?:[^\s<>"@]+@)?[A-Za-z0-9.\-[\]:]+(?:;[^\s<>"?]*)?$/i;
const TEL_URI_RE = /^tel:\+?[0-9A-Fa-f*#().-]*[0-9][0-9A-Fa-f*#().-]*(?:;[^\s<>"]*)?$/i;

export function validateCreate(body: Record<string, unknown>): ValidCreate {
  if (body.mode === undefined) throw new HttpError(400, 'missing_required_field', 'mode is required', 'mode');
  if (typeof body.mode !== 'string' || !(SESSION_MODES as readonly string[]).includes(body.mode)) {
    throw new HttpError(400, 'invalid_mode', `mode must be one of ${SESSION_MODES.join(', ')}`, 'mode');
  }
  for (const field of ['source_language', 'target_language']) {
    const v = body[field];
    if (v !== undefined && (typeof v !== 'string' || !LANGUAGE_RE.test(v))) {
      throw new HttpError(400, 'invalid_language_code', `${field} must look like "de" or "de-DE"`, field);
    }
  }
  // Current docs select telephony with `routing`; the older guide with `provider`. One request picks one of them.
  if (body.routing !== undefined && body.provider !== undefined)
    throw new HttpError(400, 'invalid_provider', 'Send routing or provider, not both', 'provider');
  const routing = optionalObject(body, 'routing');
  if (routing !== undefined) validateRouting(routing);
  const provider = validateProvider(body.provider);
  const recording = optionalObject(body, 'recording');
  if (recording !== undefined) {
    if (typeof recording.enabled !== 'boolean')
      throw new HttpError(400, 'invalid_field_value', 'recording.enabled must be a boolean', 'recording.enabled');
    if (recording.channels !== undefined && recording.channels !== 'dual') {
      throw new HttpError(400, 'invalid_field_value', 'recording.channels must be dual', 'recording.channels');
    }
  }
  return {
    mode: body.mode,
    sourceLanguage: body.source_language as string | undefined,
    targetLanguage: body.target_language as string | undefined,
    requestStyle: provider !== undefined ? 'provider' : routing !== undefined ? 'routing' : undefined,
    routing,
    provider,
    sipUri: (provider?.sip_uri ?? routing?.sip_uri) as string | undefined,
    recording,
    metadata: optionalObject(body, 'metadata'),
  };
}

function validateRouting(routing: Record<string, unknown>): void {
  if (routing.type !== undefined && routing.type !== 'sip')
    throw new HttpError(400, 'invalid_field_value', 'routing.type must be sip', 'routing.type');
  if (routing.direction !== undefined && routing.direction !== 'inbound' && routing.direction !== 'outbound') {
    throw new HttpError(
      400,
      'invalid_field_value',
      'routing.direction must be inbound or outbound',
      'routing.direction',
    );
  }
  if (
    routing.phone_number !== undefined &&
    (typeof routing.phone_number !== 'string' || !/^\+[1-9]\d{1,14}$/.test(routing.phone_number))
  ) {
    throw new HttpError(400, 'invalid_field_value', 'routing.phone_number must be E.164', 'routing.phone_number');
  }
  if (routing.connection_id !== undefined && typeof routing.connection_id !== 'string') {
    throw new HttpError(400, 'invalid_field_value', 'routing.connection_id must be a string', 'routing.connection_id');
  }
  if (routing.sip_uri !== undefined) validateSipUri(routing.sip_uri, 'routing.sip_uri');
}

/** The older guide's `provider: { type: "telnyx", sip_uri }`; the sandbox knows no other provider. */
function validateProvider(provider: unknown): Record<string, unknown> | undefined {
  if (provider === undefined) return undefined;
  if (!isObject(provider)) throw new HttpError(400, 'invalid_provider', 'provider must be an object', 'provider');
  if (provider.type !== 'telnyx') {
    throw new HttpError(
      400,
      'invalid_provider',
      `provider.type must be telnyx, not ${JSON.stringify(provider.type) ?? 'none'}`,
      'provider.type',
    );
  }
  if (provider.sip_uri === undefined)
    throw new HttpError(400, 'missing_required_field', 'provider.sip_uri is required', 'provider.sip_uri');
  validateSipUri(provider.sip_uri, 'provider.sip_uri');
  return provider;
}

function validateSipUri(v: unknown, param: string): void {
  if (typeof v !== 'string' || !(SIP_URI_RE.test(v) || TEL_URI_RE.test(v)))
    throw new HttpError(400, 'invalid_field_value', `${param} must be a sip:, sips: or tel: URI`, param);
}

function optionalObject(body: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new HttpError(400, 'invalid_field_value', `${field} must be an object`, field);
  return v;
}
