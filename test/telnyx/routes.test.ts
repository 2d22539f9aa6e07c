import { afterEach, describe, expect, it } from 'vitest';
import { callEvent, generateSigningKey, signHeaders, startHarness } from '../telnyx/harness.ts';
import type { Harness } from '../telnyx/harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

const VOICE = new URLSearchParams({ CallSid: 'v3:sig-1', From: '+4930111', To: '+4940222' }).toString();
const HANGUP = JSON.stringify(
  callEvent('call.hangup', { call_control_id: 'v3:sig-1', hangup_cause: 'normal_clearing' }, 'ev-sig'),
);
const RECORDING = new URLSearchParams({
  CallSid: 'v3:sig-1',
  RecordingStatus: 'completed',
  RecordingUrl: 'https://r.example/1',
}).toString();

const CASES: Array<{ path: string; body: string; type: string }> = [
  { path: '/webhooks/telnyx/voice', body: VOICE, type: 'application/x-www-form-urlencoded' },
  { path: '/webhooks/telnyx/status', body: HANGUP, type: 'application/json' },
  { path: '/webhooks/telnyx/outbound', body: HANGUP, type: 'application/json' },
  { path: '/webhooks/telnyx/call-control', body: HANGUP, type: 'application/json' },
  { path: '/webhooks/telnyx/recording', body: RECORDING, type: 'application/x-www-form-urlencoded' },
];

type Attack = {
  name: string;
  headers: (hh: Harness, body: string) => Record<string, string>;
  send?: (body: string) => string;
};
const ATTACKS: Attack[] = [
  {
    name: 'tampered body',
    headers: (hh, body) => signHeaders(hh.key, body),
    send: (body) => body.replace('sig-1', 'sig-2'),
  },
  { name: 'wrong key', headers: (_hh, body) => signHeaders(generateSigningKey(), body) },
  { name: 'stale timestamp', headers: (hh, body) => signHeaders(hh.key, body, Math.floor(Date.now() / 1000) - 301) },
  { name: 'missing headers', headers: () => ({}) },
  {
    name: 'missing timestamp',
    headers: (hh, body) => ({ 'telnyx-signature-ed25519': signHeaders(hh.key, body)['telnyx-signature-ed25519']! }),
  },
];

async function send(
  hh: Harness,
  path: string,
  body: string,
  type: string,
  headers: Record<string, string>,
): Promise<Response> {
  return fetch(`${hh.url}${path}`, { method: 'POST', headers: { 'content-type': type, ...headers }, body });
}

async function failures(hh: Harness, path: string): Promise<number> {
  const text = await (await fetch(`${hh.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find((l) => l.startsWith(`kallglot_gateway_webhook_verification_failures_total{path="${path}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('Telnyx webhook signatures over HTTP', () => {
  for (const c of CASES) {
    it(`${c.path}: refuses unsigned or badly signed requests with 401 and records nothing`, async () => {
      const hh = (h = await startHarness());
      for (const attack of ATTACKS) {
        const res = await send(
          hh,
          c.path,
          attack.send ? attack.send(c.body) : c.body,
          c.type,
          attack.headers(hh, c.body),
        );
        expect(res.status, attack.name).toBe(401);
        expect(await res.json()).toEqual({ error: 'invalid_signature' });
      }
      expect(hh.registry.recent()).toEqual([]);
      expect(hh.registry.events('v3:sig-1')).toEqual([]);
      expect(hh.registry.events('v3:sig-2')).toEqual([]);
      expect(hh.sandbox.stats()).toMatchObject({ createRequests: 0, endRequests: 0 });
      expect(await failures(hh, c.path)).toBe(ATTACKS.length);
    });

    it(`${c.path}: accepts a validly signed request`, async () => {
      const hh = (h = await startHarness());
      const res = await send(hh, c.path, c.body, c.type, signHeaders(hh.key, c.body));
      expect(res.status).toBe(200);
      expect(await failures(hh, c.path)).toBe(0);
    });
  }

  it('a validly signed TeXML request is processed end to end (control for the refusals above)', async () => {
    const hh = (h = await startHarness());
    const res = await send(
      hh,
      '/webhooks/telnyx/voice',
      VOICE,
      'application/x-www-form-urlencoded',
      signHeaders(hh.key, VOICE),
    );
    expect(res.status).toBe(200);
    expect(hh.registry.get('v3:sig-1')).toMatchObject({ kind: 'texml', route: 'translated' });
    expect(hh.sandbox.stats().created).toBe(1);
  });

  it('refuses every webhook with 503 when TELNYX_PUBLIC_KEY is not configured', async () => {
    const hh = (h = await startHarness({ publicKey: false }));
    const res = await send(
      hh,
      '/webhooks/telnyx/voice',
      VOICE,
      'application/x-www-form-urlencoded',
      signHeaders(hh.key, VOICE),
    );
    expect(res.status).toBe(503);
    expect(hh.registry.recent()).toEqual([]);
    expect(hh.sandbox.stats().createRequests).toBe(0);
  });
});
