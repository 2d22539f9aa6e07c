import { afterEach, describe, expect, it } from 'vitest';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ADMIN_TOKEN, TELNYX_API_KEY, callEvent, clientState, startHarness, waitFor } from './harness.ts';
import type { Harness, HarnessOptions } from './harness.ts';

interface Recorded {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  body: Record<string, unknown>;
}

/** A local stand-in for the Telnyx REST API (v2): records requests, answers dial and call actions. */
class FakeTelnyx {
  readonly requests: Recorded[] = [];
  dialStatus = 200;
  callControlId = 'v3:out-cc-1';
  /** Runs before the dial is answered (to deliver webhooks that beat the dial response). */
  beforeDialReply: ((body: Record<string, unknown>) => Promise<void>) | undefined;
  #server = http.createServer((req, res) => void this.#handle(req, res));
  url = '';

  async start(): Promise<void> {
    await new Promise<void>((r) => this.#server.listen(0, '127.0.0.1', () => r()));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/v2`;
  }

  async stop(): Promise<void> {
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections();
    });
  }

  of(pathEnd: string): Recorded[] {
    return this.requests.filter((r) => r.path.endsWith(pathEnd));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    this.requests.push({
      method: req.method ?? '',
      path: decodeURIComponent(req.url ?? ''),
      headers: req.headers,
      body,
    });
    const json = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    if (req.method === 'POST' && req.url === '/v2/calls') {
      if (this.beforeDialReply) await this.beforeDialReply(body);
      if (this.dialStatus !== 200)
        return json(this.dialStatus, { errors: [{ code: '10015', title: 'Invalid destination' }] });
      return json(200, {
        data: {
          call_control_id: this.callControlId,
          call_leg_id: 'leg-1',
          call_session_id: 'cs-1',
          is_alive: false,
          record_type: 'call',
          client_state: body.client_state,
        },
      });
    }
    if (req.method === 'POST' && /^\/v2\/calls\/[^/]+\/actions\/(streaming_start|hangup)$/.test(req.url ?? '')) {
      return json(200, { data: { result: 'ok' } });
    }
    json(404, { errors: [{ code: '404', title: 'not found' }] });
  }
}

let h: Harness | undefined;
let fake: FakeTelnyx | undefined;
afterEach(async () => {
  await h?.close();
  await fake?.stop();
  h = undefined;
  fake = undefined;
});

async function setup(
  env: Record<string, string> = {},
  opts: HarnessOptions = {},
): Promise<{ hh: Harness; fk: FakeTelnyx }> {
  fake = new FakeTelnyx();
  await fake.start();
  h = await startHarness({
    ...opts,
    env: {
      TELNYX_API_KEY,
      TELNYX_CONNECTION_ID: 'conn-123',
      TELNYX_BASE_URL: fake.url,
      PUBLIC_BASE_URL: 'https://gw.example.com',
      ...env,
    },
  });
  return { hh: h, fk: fake };
}

async function dial(hh: Harness, body: unknown, token = ADMIN_TOKEN): Promise<Response> {
  return fetch(`${hh.url}/calls`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

const CALL = { to: '+4930123456', from: '+4940999888', source_language: 'de', target_language: 'en' };
const decode = (b64: unknown): Record<string, unknown> =>
  JSON.parse(Buffer.from(String(b64), 'base64').toString('utf8')) as Record<string, unknown>;

describe('POST /calls (outbound translated call via Call Control)', () => {
  it('creates the session, dials with the stream, records the call, then handles answered and hangup webhooks', async () => {
    const { hh, fk } = await setup();
    const res = await dial(hh, CALL);
    expect(res.status).toBe(201);
    const out = (await res.json()) as { call_control_id: string; session_id: string; call_ref: string };
    expect(out.call_control_id).toBe('v3:out-cc-1');
    const session = hh.sandbox.sessions().find((s) => s.id === out.session_id)!;
    expect(session).toMatchObject({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
      // Our number routes; the number dialled is the other party.
      routing: { phone_number: '+4940999888', sip_uri: 'tel:+4930123456' },
      requestStyle: 'routing',
      sipUri: 'tel:+4930123456',
    });

    const [req] = fk.of('/v2/calls');
    expect(req!.headers.authorization).toBe(`Bearer ${TELNYX_API_KEY}`);
    const b = req!.body;
    expect(b.connection_id).toBe('conn-123');
    expect(b.to).toBe('+4930123456');
    expect(b.from).toBe('+4940999888');
    expect(b.stream_url).toBe(`${hh.sandbox.url.replace(/^http/, 'ws')}/sessions/${out.session_id}/connect`);
    expect(b.stream_track).toBe('both_tracks');
    expect(b.stream_auth_token).toMatch(/^kst_/);
    expect(b.webhook_url).toBe('https://gw.example.com/webhooks/telnyx/outbound');
    expect(decode(b.client_state)).toEqual({ session_id: out.session_id, call_id: out.call_ref, stream: 'dial' });

    expect(hh.registry.get('v3:out-cc-1')).toMatchObject({
      kind: 'call_control',
      session_id: out.session_id,
      route: 'translated',
      state: 'active',
      to_user: '+4930123456',
      client_state: b.client_state,
    });

    const cs = String(b.client_state);
    const answered = callEvent('call.answered', { call_control_id: 'v3:out-cc-1', client_state: cs }, 'ev-a');
    expect((await hh.webhook('/webhooks/telnyx/outbound', answered)).status).toBe(200);
    await hh.routes.outbound.idle();
    expect(fk.of('/actions/streaming_start')).toHaveLength(0); // the dial already carried the stream
    expect(hh.registry.get('v3:out-cc-1')!.answer_at).not.toBeNull();

    const hangup = callEvent(
      'call.hangup',
      { call_control_id: 'v3:out-cc-1', client_state: cs, hangup_cause: 'normal_clearing' },
      'ev-h',
    );
    expect((await hh.webhook('/webhooks/telnyx/outbound', hangup)).status).toBe(200);
    expect((await hh.webhook('/webhooks/telnyx/outbound', hangup)).status).toBe(200);
    await waitFor(() => hh.registry.get('v3:out-cc-1')!.session_end_status === 'ended', 'session end confirmed');
    expect(hh.sandbox.sessions().find((s) => s.id === out.session_id)!.endCalls).toBe(1);
    expect(hh.registry.get('v3:out-cc-1')!.state).toBe('ended');
  });

  it('with TELNYX_STREAM_ON_ANSWER dials without a stream and starts it once on call.answered', async () => {
    const { hh, fk } = await setup({ TELNYX_STREAM_ON_ANSWER: 'true' });
    const out = (await (await dial(hh, { ...CALL, mode: 'assistive_translation' })).json()) as { session_id: string };
    const b = fk.of('/v2/calls')[0]!.body;
    expect(b.stream_url).toBeUndefined();
    expect(b.stream_track).toBeUndefined();
    expect(decode(b.client_state)).toMatchObject({ stream: 'answer' });
    const answered = callEvent(
      'call.answered',
      { call_control_id: 'v3:out-cc-1', client_state: b.client_state },
      'ev-a2',
    );
    await hh.webhook('/webhooks/telnyx/outbound', answered);
    await hh.webhook('/webhooks/telnyx/outbound', answered); // redelivery
    await hh.routes.outbound.idle();
    const starts = fk.of('/v2/calls/v3:out-cc-1/actions/streaming_start');
    expect(starts).toHaveLength(1);
    expect(hh.sandbox.stats().getRequests).toBe(0); // stream details kept from the create
    expect(starts[0]!.body).toMatchObject({
      stream_url: `${hh.sandbox.url.replace(/^http/, 'ws')}/sessions/${out.session_id}/connect`,
      stream_track: 'both_tracks',
      custom_parameters: [
        { name: 'token', value: expect.stringMatching(/^kst_/) },
        { name: 'session_id', value: out.session_id },
      ],
    });
  });

  it('does not start a stream when answered arrives after the hangup', async () => {
    const { hh, fk } = await setup({ TELNYX_STREAM_ON_ANSWER: 'true' });
    const out = (await (await dial(hh, CALL)).json()) as { session_id: string };
    const cs = fk.of('/v2/calls')[0]!.body.client_state;
    await hh.webhook(
      '/webhooks/telnyx/outbound',
      callEvent('call.hangup', { call_control_id: 'v3:out-cc-1', client_state: cs, hangup_cause: 'user_busy' }),
    );
    await hh.webhook(
      '/webhooks/telnyx/outbound',
      callEvent('call.answered', { call_control_id: 'v3:out-cc-1', client_state: cs }),
    );
    await hh.routes.outbound.idle();
    expect(fk.of('/actions/streaming_start')).toHaveLength(0);
    await waitFor(() => hh.sandbox.stats().ended === 1, 'session ended');
    expect(hh.sandbox.sessions().find((s) => s.id === out.session_id)!.endCalls).toBe(1);
  });

  it('handles a hangup webhook that arrives before the dial response', async () => {
    const { hh, fk } = await setup();
    fk.beforeDialReply = async (body) => {
      const res = await hh.webhook(
        '/webhooks/telnyx/outbound',
        callEvent('call.hangup', {
          call_control_id: 'v3:out-cc-1',
          client_state: body.client_state,
          hangup_cause: 'call_rejected',
        }),
      );
      expect(res.status).toBe(200);
    };
    const res = await dial(hh, CALL);
    expect(res.status).toBe(201);
    const out = (await res.json()) as { session_id: string };
    expect(hh.registry.get('v3:out-cc-1')).toMatchObject({
      state: 'ended',
      end_reason: 'call_rejected',
      session_id: out.session_id,
    });
    await waitFor(() => hh.sandbox.stats().ended === 1, 'session ended');
    expect(hh.sandbox.sessions()[0]!.endCalls).toBe(1);
  });

  it('ends the session (reason error) and answers 502 when the dial fails', async () => {
    const { hh, fk } = await setup();
    fk.dialStatus = 422;
    const res = await dial(hh, CALL);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'dial_failed' });
    expect(fk.of('/v2/calls')).toHaveLength(1); // never retried: a retried dial could place a second call
    await waitFor(() => hh.sandbox.stats().ended === 1, 'session ended');
    expect(hh.sandbox.sessions()[0]).toMatchObject({ endReason: 'error', endCalls: 1 });
    expect(hh.registry.recent()).toEqual([]);
  });

  it('requires the admin token and a valid body', async () => {
    const { hh, fk } = await setup();
    expect((await dial(hh, CALL, 'wrong')).status).toBe(401);
    expect((await dial(hh, { ...CALL, to: '12345' })).status).toBe(400);
    expect((await dial(hh, { ...CALL, source_language: 'klingon!' })).status).toBe(400);
    expect((await dial(hh, { ...CALL, mode: 'ai_agent' })).status).toBe(400);
    expect((await dial(hh, 'not json')).status).toBe(400);
    expect(fk.requests).toHaveLength(0);
    expect(hh.sandbox.stats().createRequests).toBe(0);
  });

  it('answers 429 with Retry-After when Kallglot is rate limited, without dialling', async () => {
    const { hh, fk } = await setup();
    hh.sandbox.injectFailure({ endpoint: 'create', status: 429, retryAfterSec: 7 });
    const res = await dial(hh, CALL);
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(fk.requests).toHaveLength(0);
  });

  it('refuses outbound calls with 503 when Telnyx is not configured', async () => {
    const { hh } = await setup({ TELNYX_API_KEY: '' });
    const res = await dial(hh, CALL);
    expect(res.status).toBe(503);
    expect(hh.sandbox.stats().createRequests).toBe(0);
  });

  it('ends the session and hangs up when starting the stream on answer fails', async () => {
    const { hh, fk } = await setup({ TELNYX_STREAM_ON_ANSWER: 'true' });
    // A call whose stream details are not in memory (as after a restart) and whose session Kallglot no longer knows.
    const cs = clientState({ session_id: 'sess_missing', call_id: 'ref-1', stream: 'answer' });
    await hh.webhook(
      '/webhooks/telnyx/outbound',
      callEvent('call.answered', { call_control_id: 'v3:out-cc-2', client_state: cs }),
    );
    await hh.routes.outbound.idle();
    expect(hh.sandbox.stats().getRequests).toBe(1);
    expect(fk.of('/actions/streaming_start')).toHaveLength(0);
    expect(fk.of('/v2/calls/v3:out-cc-2/actions/hangup')).toHaveLength(1);
    expect(hh.registry.events('v3:out-cc-2').map((e) => e.type)).toEqual(['call.answered', 'stream_start_failed']);
    await waitFor(() => hh.sandbox.stats().endRequests === 1, 'session end attempted');
  });
});
