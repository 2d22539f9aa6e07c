import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';

const MAIN = fileURLToPath(new URL('../../src/kallglot/sandbox-main.ts', import.meta.url));
const AUTH = { authorization: 'Bearer sk_test_sandbox', 'content-type': 'application/json' };

interface Json {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies of every endpoint, read field by field by the assertions
  body: any;
}

async function call(url: string, init: RequestInit = {}): Promise<Json> {
  const res = await fetch(url, init);
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // keep text
  }
  return { status: res.status, headers: res.headers, body };
}

const post = (url: string, body: unknown, headers: Record<string, string> = AUTH): Promise<Json> =>
  call(url, { method: 'POST', headers, body: JSON.stringify(body) });

describe('sandbox-main in a separate process, driven by the /_sandbox control API', () => {
  let child: ChildProcess;
  let api: string; // http://127.0.0.1:PORT/v1
  let control: string; // http://127.0.0.1:PORT/_sandbox

  beforeAll(async () => {
    child = spawn(process.execPath, [MAIN, '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const rl = createInterface({ input: child.stdout! });
    const line = await new Promise<string>((resolve, reject) => {
      rl.once('line', resolve);
      child.once('exit', (code) => reject(new Error(`sandbox-main exited early with ${code}`)));
    });
    rl.close();
    const printed = JSON.parse(line) as { url: string; port: number };
    expect(printed.url).toBe(`http://127.0.0.1:${printed.port}/v1`);
    api = printed.url;
    control = printed.url.replace(/\/v1$/, '/_sandbox');
  });

  afterAll(async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
  });

  beforeEach(async () => {
    expect((await call(`${control}/reset`, { method: 'POST' })).status).toBe(200);
  });

  it('starts empty and reports sessions and stats', async () => {
    expect((await call(`${control}/stats`)).body).toEqual({
      created: 0,
      ended: 0,
      createRequests: 0,
      endRequests: 0,
      getRequests: 0,
    });
    const created = await post(
      `${api}/sessions`,
      { mode: 'ai_agent', source_language: 'fr', metadata: { callId: 'c1' } },
      { ...AUTH, 'idempotency-key': 'idem-1' },
    );
    expect(created.status).toBe(201);
    const sessions = (await call(`${control}/sessions`)).body;
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({
      id: created.body.id,
      mode: 'ai_agent',
      sourceLanguage: 'fr',
      metadata: { callId: 'c1' },
      idempotencyKey: 'idem-1',
      endCalls: 0,
    });
    expect((await call(`${control}/stats`)).body).toMatchObject({ created: 1, createRequests: 1 });
  });

  it('injects a failure for a number of requests, then answers normally', async () => {
    const inj = await post(`${control}/failures`, { endpoint: 'create', status: 429, retryAfterSec: 3, times: 1 }, {});
    expect(inj.status).toBe(200);
    const limited = await post(`${api}/sessions`, { mode: 'ai_agent' });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('3');
    expect(limited.body.error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded', retry_after: 3 });
    expect(limited.body.error.request_id).toBe(limited.headers.get('x-request-id'));
    expect((await post(`${api}/sessions`, { mode: 'ai_agent' })).status).toBe(201);
    expect((await call(`${control}/stats`)).body).toMatchObject({ created: 1, createRequests: 2 });
  });

  it('keeps an unlimited failure until DELETE /_sandbox/failures', async () => {
    await post(`${control}/failures`, { endpoint: 'any', status: 503 }, {});
    expect((await post(`${api}/sessions`, { mode: 'ai_agent' })).status).toBe(503);
    expect((await call(`${api}/sessions/sess_x`, { headers: AUTH })).status).toBe(503);
    expect((await call(`${control}/failures`, { method: 'DELETE' })).status).toBe(200);
    expect((await post(`${api}/sessions`, { mode: 'ai_agent' })).status).toBe(201);
  });

  it('rejects malformed failure specs and unknown control routes', async () => {
    const bad = await post(`${control}/failures`, { endpoint: 'delete-everything' }, {});
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/endpoint/);
    expect((await post(`${control}/failures`, { endpoint: 'create', status: 42 }, {})).status).toBe(400);
    expect((await call(`${control}/nope`)).status).toBe(404);
    // A rejected spec must not have been installed.
    expect((await post(`${api}/sessions`, { mode: 'ai_agent' })).status).toBe(201);
  });

  it('reset forgets sessions, counters and failures', async () => {
    await post(`${api}/sessions`, { mode: 'ai_agent' });
    await post(`${control}/failures`, { endpoint: 'create', status: 500 }, {});
    await call(`${control}/reset`, { method: 'POST' });
    expect((await call(`${control}/sessions`)).body).toEqual([]);
    expect((await call(`${control}/stats`)).body).toMatchObject({ created: 0, createRequests: 0 });
    expect((await post(`${api}/sessions`, { mode: 'ai_agent' })).status).toBe(201);
  });
});

describe('KallglotSandbox API behaviour (in process)', () => {
  let sandbox: KallglotSandbox;
  let api: string;

  beforeEach(async () => {
    sandbox = new KallglotSandbox();
    ({ url: api } = await sandbox.start());
  });

  afterEach(async () => {
    await sandbox.stop();
  });

  it('requires a Bearer token', async () => {
    const res = await post(`${api}/sessions`, { mode: 'ai_agent' }, { 'content-type': 'application/json' });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
  });

  it('validates mode and languages', async () => {
    expect((await post(`${api}/sessions`, {})).body.error).toMatchObject({
      code: 'missing_required_field',
      param: 'mode',
    });
    expect((await post(`${api}/sessions`, { mode: 'x' })).body.error.code).toBe('invalid_mode');
    expect((await post(`${api}/sessions`, { mode: 'ai_agent', target_language: 'EN' })).body.error.code).toBe(
      'invalid_language_code',
    );
    expect(
      (await post(`${api}/sessions`, { mode: 'ai_agent', source_language: 'de-DE', target_language: 'en' })).status,
    ).toBe(201);
    expect((await call(`${api}/sessions`, { method: 'POST', headers: AUTH, body: 'not json' })).body.error.code).toBe(
      'invalid_request',
    );
  });

  it('accepts both request shapes and records which one, with its sip_uri', async () => {
    const viaRouting = await post(`${api}/sessions`, {
      mode: 'ai_agent',
      routing: { type: 'sip', sip_uri: 'sip:+4930123456@sip.telnyx.com' },
    });
    expect(viaRouting.status).toBe(201);
    expect(viaRouting.body.provider).toBe('sip');
    const viaProvider = await post(`${api}/sessions`, {
      mode: 'ai_agent',
      provider: { type: 'telnyx', sip_uri: 'tel:+4930123456' },
    });
    expect(viaProvider.status).toBe(201);
    // Responses name the provider as a string, whichever shape the request used.
    expect(viaProvider.body.provider).toBe('telnyx');
    const neither = await post(`${api}/sessions`, { mode: 'ai_agent' });
    expect(neither.status).toBe(201);
    expect(sandbox.sessions().map((r) => [r.requestStyle, r.sipUri, r.routing, r.provider])).toEqual([
      [
        'routing',
        'sip:+4930123456@sip.telnyx.com',
        { type: 'sip', sip_uri: 'sip:+4930123456@sip.telnyx.com' },
        undefined,
      ],
      ['provider', 'tel:+4930123456', undefined, { type: 'telnyx', sip_uri: 'tel:+4930123456' }],
      [undefined, undefined, undefined, undefined],
    ]);
  });

  it('rejects unknown provider types, bad or missing sip_uri and both shapes at once, with the API error shape', async () => {
    const cases: Array<[Record<string, unknown>, string, string]> = [
      [{ provider: { type: 'twilio', sip_uri: 'sip:a@b' } }, 'invalid_provider', 'provider.type'],
      [{ provider: { sip_uri: 'sip:a@b' } }, 'invalid_provider', 'provider.type'],
      [{ provider: 'telnyx' }, 'invalid_provider', 'provider'],
      [{ provider: { type: 'telnyx' } }, 'missing_required_field', 'provider.sip_uri'],
      [{ provider: { type: 'telnyx', sip_uri: 'http://pbx/agent' } }, 'invalid_field_value', 'provider.sip_uri'],
      [{ provider: { type: 'telnyx', sip_uri: 'sip:' } }, 'invalid_field_value', 'provider.sip_uri'],
      [{ routing: { type: 'sip', sip_uri: 'agent@pbx' } }, 'invalid_field_value', 'routing.sip_uri'],
      [{ routing: { type: 'sip', sip_uri: 42 } }, 'invalid_field_value', 'routing.sip_uri'],
      [{ routing: { type: 'sip' }, provider: { type: 'telnyx', sip_uri: 'sip:a@b' } }, 'invalid_provider', 'provider'],
    ];
    for (const [extra, code, param] of cases) {
      const res = await post(`${api}/sessions`, { mode: 'ai_agent', ...extra });
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect(res.body.error, JSON.stringify(extra)).toMatchObject({ type: 'invalid_request_error', code, param });
      expect(res.body.error.request_id).toBe(res.headers.get('x-request-id'));
    }
    expect(sandbox.stats()).toMatchObject({ created: 0, createRequests: cases.length });
  });

  it('replays the same session for a repeated Idempotency-Key and refuses it for a different body', async () => {
    const headers = { ...AUTH, 'idempotency-key': 'same' };
    const a = await post(`${api}/sessions`, { mode: 'ai_agent' }, headers);
    const b = await post(`${api}/sessions`, { mode: 'ai_agent' }, headers);
    expect(b.status).toBe(201);
    expect(b.body).toEqual(a.body);
    expect((await post(`${api}/sessions`, { mode: 'help_chat_voice' }, headers)).status).toBe(409);
    expect(sandbox.stats()).toMatchObject({ created: 1, createRequests: 3 });
  });

  it('gets, ends idempotently, and 404s unknown ids with the error shape', async () => {
    const { body: s } = await post(`${api}/sessions`, {
      mode: 'bidirectional_translation',
      source_language: 'de',
      target_language: 'en',
    });
    expect(s).toMatchObject({ object: 'session', status: 'created', mode: 'bidirectional_translation' });
    expect(s.stream.url).toBe(`${api.replace('http:', 'ws:')}/sessions/${s.id}/connect`);
    expect((await call(`${api}/sessions/${s.id}`, { headers: AUTH })).body).toEqual(s);

    const badReason = await post(`${api}/sessions/${s.id}/end`, { reason: 'bored' });
    expect(badReason.body.error).toMatchObject({ code: 'invalid_field_value', param: 'reason' });
    const end1 = await post(`${api}/sessions/${s.id}/end`, { reason: 'timeout' });
    expect(end1.status).toBe(200);
    expect(end1.body).toMatchObject({ status: 'ended', end_reason: 'timeout' });
    expect(typeof end1.body.duration_seconds).toBe('number');
    const end2 = await call(`${api}/sessions/${s.id}/end`, { method: 'POST', headers: AUTH });
    expect(end2.body).toEqual(end1.body);
    expect(sandbox.sessions()[0]).toMatchObject({ endReason: 'timeout', endCalls: 2 });
    expect(sandbox.stats()).toMatchObject({ ended: 1, endRequests: 3 });

    const missing = await call(`${api}/sessions/sess_missing`, { headers: AUTH });
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ type: 'invalid_request_error', code: 'resource_not_found' });
    expect(missing.body.error.request_id).toMatch(/^req_/);
  });

  it('delays a request by latencyMs and then processes it', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 150, times: 1 });
    const started = Date.now();
    const res = await post(`${api}/sessions`, { mode: 'ai_agent' });
    expect(res.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(sandbox.stats().created).toBe(1);
  });

  it('holds a hung request open until stop() releases it', async () => {
    sandbox.injectFailure({ endpoint: 'get', hang: true });
    const pending = fetch(`${api}/sessions/sess_any`, { headers: AUTH }).then(
      () => 'answered',
      () => 'released',
    );
    const early = await Promise.race([pending, new Promise((r) => setTimeout(() => r('still-open'), 200))]);
    expect(early).toBe('still-open');
    expect(sandbox.stats().getRequests).toBe(1);
    await sandbox.stop();
    expect(await pending).toBe('released');
  });
});
