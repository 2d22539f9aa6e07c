/** Small guards for untrusted JSON (webhook bodies, API responses): parse without throwing, narrow to objects. */

/** JSON.parse that answers undefined instead of throwing on malformed text. */
export function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** A plain JSON object (not null, not an array). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
