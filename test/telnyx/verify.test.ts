import { describe, expect, it } from 'vitest';
import { TelnyxWebhook, TelnyxWebhookVerificationError } from 'telnyx/lib/webhooks';
import { TelnyxSignatureVerifier, parseTelnyxPublicKey } from '../../src/telnyx/verify.ts';
import { generateSigningKey, signHeaders } from './harness.ts';

const BODY = '{"data":{"event_type":"call.hangup","id":"ev-1","payload":{"call_control_id":"v3:abc"}}}';

describe('TelnyxSignatureVerifier', () => {
  const key = generateSigningKey();
  const verifier = new TelnyxSignatureVerifier(key.publicKeyBase64, 300);

  it('accepts a valid signature over the raw body', () => {
    const r = verifier.verify(Buffer.from(BODY), signHeaders(key, BODY));
    expect(r.ok).toBe(true);
  });

  it('rejects a tampered body', () => {
    const headers = signHeaders(key, BODY);
    const r = verifier.verify(Buffer.from(BODY.replace('call.hangup', 'call.answered')), headers);
    expect(r).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('rejects a signature made with another key', () => {
    const other = generateSigningKey();
    expect(verifier.verify(Buffer.from(BODY), signHeaders(other, BODY))).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('rejects a timestamp outside the tolerance, in the past and in the future', () => {
    const now = Math.floor(Date.now() / 1000);
    expect(verifier.verify(Buffer.from(BODY), signHeaders(key, BODY, now - 301))).toEqual({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verifier.verify(Buffer.from(BODY), signHeaders(key, BODY, now + 301))).toEqual({
      ok: false,
      reason: 'stale_timestamp',
    });
    expect(verifier.verify(Buffer.from(BODY), signHeaders(key, BODY, now - 290)).ok).toBe(true);
  });

  it('uses the configured tolerance', () => {
    const lenient = new TelnyxSignatureVerifier(key.publicKeyBase64, 900);
    const old = Math.floor(Date.now() / 1000) - 600;
    expect(lenient.verify(Buffer.from(BODY), signHeaders(key, BODY, old)).ok).toBe(true);
    expect(verifier.verify(Buffer.from(BODY), signHeaders(key, BODY, old)).ok).toBe(false);
  });

  it('rejects missing headers, a non-numeric timestamp and a malformed signature', () => {
    const h = signHeaders(key, BODY);
    expect(verifier.verify(Buffer.from(BODY), {})).toEqual({ ok: false, reason: 'missing_headers' });
    expect(verifier.verify(Buffer.from(BODY), { 'telnyx-timestamp': h['telnyx-timestamp']! })).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    expect(verifier.verify(Buffer.from(BODY), { 'telnyx-signature-ed25519': h['telnyx-signature-ed25519']! })).toEqual({
      ok: false,
      reason: 'missing_headers',
    });
    expect(verifier.verify(Buffer.from(BODY), { ...h, 'telnyx-timestamp': '12e3' })).toEqual({
      ok: false,
      reason: 'bad_timestamp',
    });
    expect(
      verifier.verify(Buffer.from(BODY), { ...h, 'telnyx-signature-ed25519': Buffer.alloc(32).toString('base64') }),
    ).toEqual({ ok: false, reason: 'bad_signature' });
    expect(verifier.verify(Buffer.from(BODY), { ...h, 'telnyx-signature-ed25519': 'not base64!' })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('verifies over the bytes, so a body that is not valid UTF-8 still verifies exactly', () => {
    const bytes = Buffer.from([0x43, 0x61, 0x6c, 0x6c, 0xff, 0xfe, 0x3d, 0x31]);
    const headers = signHeaders(key, bytes);
    expect(verifier.verify(bytes, headers).ok).toBe(true);
    const flipped = Buffer.from(bytes);
    flipped[4] = 0xfd;
    expect(verifier.verify(flipped, headers).ok).toBe(false);
  });

  it('agrees with the telnyx SDK verifier on the same signatures (same scheme)', async () => {
    const headers = signHeaders(key, BODY);
    await expect(new TelnyxWebhook(key.publicKeyBase64).verify(BODY, headers)).resolves.toBeUndefined();
    expect(verifier.verify(Buffer.from(BODY), headers).ok).toBe(true);
    const tampered = `${BODY} `;
    await expect(new TelnyxWebhook(key.publicKeyBase64).verify(tampered, headers)).rejects.toBeInstanceOf(
      TelnyxWebhookVerificationError,
    );
    expect(verifier.verify(Buffer.from(tampered), headers).ok).toBe(false);
  });

  it('refuses a public key that is not 32 bytes of base64', () => {
    expect(() => parseTelnyxPublicKey('abc')).toThrow(/TELNYX_PUBLIC_KEY/);
    expect(() => parseTelnyxPublicKey(Buffer.alloc(31).toString('base64'))).toThrow(/32 bytes/);
    expect(() => parseTelnyxPublicKey(key.publicKeyBase64)).not.toThrow();
  });
});
