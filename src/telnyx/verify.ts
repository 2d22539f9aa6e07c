/**
 * Telnyx webhook signature verification: Ed25519 over `<telnyx-timestamp>|<raw body bytes>`, checked against the
 * account's public key (base64 of the raw 32-byte key), with a replay window on the timestamp.
 *
 * Why node:crypto and not the SDK's `client.webhooks.unwrap(body, { headers, key })` (telnyx 7.24): unwrap
 *  - hard-codes the 300 s tolerance, so WEBHOOK_TOLERANCE_SEC could not be honoured;
 *  - JSON.parses the body after verifying, and TeXML posts application/x-www-form-urlencoded, so every valid TeXML
 *    webhook would come back as a SyntaxError indistinguishable from a failure unless we special-cased it;
 *  - takes the body as a string, so a body that is not valid UTF-8 is verified over the decoded (replaced) text
 *    instead of the bytes Telnyx signed.
 * The scheme itself is the same as the SDK's (a test cross-checks both against the same signatures).
 */
import crypto from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

export const SIGNATURE_HEADER = 'telnyx-signature-ed25519';
export const TIMESTAMP_HEADER = 'telnyx-timestamp';

export type VerifyFailure = 'missing_headers' | 'bad_timestamp' | 'stale_timestamp' | 'bad_signature';
export type VerifyResult = { ok: true; timestamp: number } | { ok: false; reason: VerifyFailure };

/** Builds the key object from the portal's base64 key; throws with a plain reason when it is not a 32-byte key. */
export function parseTelnyxPublicKey(base64Key: string): crypto.KeyObject {
  const trimmed = base64Key.trim();
  const raw = Buffer.from(trimmed, 'base64');
  if (raw.length !== 32 || !/^[A-Za-z0-9+/]+={0,2}$/.test(trimmed)) {
    throw new Error(
      'telnyx.publicKey (TELNYX_PUBLIC_KEY) must be the base64 Ed25519 public key from the Telnyx portal (32 bytes)',
    );
  }
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

export class TelnyxSignatureVerifier {
  readonly #key: crypto.KeyObject;
  readonly #toleranceSec: number;

  constructor(base64Key: string, toleranceSec: number) {
    this.#key = parseTelnyxPublicKey(base64Key);
    this.#toleranceSec = toleranceSec;
  }

  verify(rawBody: Buffer, headers: IncomingHttpHeaders, nowMs = Date.now()): VerifyResult {
    const signature = single(headers[SIGNATURE_HEADER]);
    const timestamp = single(headers[TIMESTAMP_HEADER]);
    if (!signature || !timestamp) return { ok: false, reason: 'missing_headers' };
    if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'bad_timestamp' };
    const ts = Number(timestamp);
    // Symmetric window: a timestamp far in the future is as suspicious as an old one (and skew goes both ways).
    if (Math.abs(nowMs / 1000 - ts) > this.#toleranceSec) return { ok: false, reason: 'stale_timestamp' };
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(signature)) return { ok: false, reason: 'bad_signature' };
    const sig = Buffer.from(signature, 'base64');
    if (sig.length !== 64) return { ok: false, reason: 'bad_signature' };
    // The header text is used verbatim in the signed bytes, exactly as Telnyx sent it.
    const signed = Buffer.concat([Buffer.from(`${timestamp}|`, 'utf8'), rawBody]);
    let valid = false;
    try {
      valid = crypto.verify(null, signed, this.#key, sig);
    } catch {
      valid = false;
    }
    return valid ? { ok: true, timestamp: ts } : { ok: false, reason: 'bad_signature' };
  }
}

/** A repeated header is ambiguous: treat it as absent rather than pick one. */
function single(v: string | string[] | undefined): string | undefined {
  if (Array.isArray(v)) return v.length === 1 ? v[0] : undefined;
  return v === undefined || v === '' ? undefined : v.trim();
}
