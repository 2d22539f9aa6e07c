/**
 * Request validation for the Kallglot sandbox, following the documented field rules and error codes so the client
 * meets the same 400s it would from the real API.
 */
import { SESSION_MODES } from './types.ts';
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
  routing: Record<string, unknown> | undefined;
  recording: Record<string, unknown> | undefined;
  metadata: Record<string, unknown> | undefined;
}

export function validateCreate(body: Record<string, unknown>): ValidCreate {
  // Current docs: `provider` is response-only; requests select telephony with `routing`.
  if (body.provider !== undefined)
    throw new HttpError(400, 'invalid_provider', 'Use routing, not provider, in requests', 'provider');
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
  const routing = optionalObject(body, 'routing');
  if (routing !== undefined) {
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
      throw new HttpError(
        400,
        'invalid_field_value',
        'routing.connection_id must be a string',
        'routing.connection_id',
      );
    }
  }
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
    routing,
    recording,
    metadata: optionalObject(body, 'metadata'),
  };
}

function optionalObject(body: Record<string, unknown>, field: string): Record<string, unknown> | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (!isObject(v)) throw new HttpError(400, 'invalid_field_value', `${field} must be an object`, field);
  return v;
}
