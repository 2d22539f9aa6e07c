import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { pino } from 'pino';
import { KallglotClient } from '../../src/kallglot/client.ts';
import type { KallglotClientOptions } from '../../src/kallglot/client.ts';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { KallglotError, isAccountProblem, isRateLimited, isRetryable } from '../../src/kallglot/errors.ts';
import { buildCreateSessionBody } from '../../src/kallglot/types.ts';
import type { CreateSessionInput, SessionMode } from '../../src/kallglot/types.ts';

const API_KEY = 'sk_test_secret_do_not_log_4711';

let sandbox: KallglotSandbox;
let baseUrl: string;
const clients: KallglotClient[] = [];
const extraSandboxes: KallglotSandbox[] = [];

function client(overrides: Partial<KallglotClientOptions> = {}): KallglotClient {
  const c = new KallglotClient({
    baseUrl,
    apiKey: API_KEY,
    requestTimeoutMs: 500,
    retries: 2,
    createDeadlineMs: 2000,
    endDeadlineMs: 3000,
    ...overrides,
  });
  clients.push(c);
  return c;
}

let keySeq = 0;
function input(overrides: Partial<CreateSessionInput> = {}): CreateSessionInput {
  keySeq += 1;
  return {
    mode: 'bidirectional_translation',
    sourceLanguage: 'de',
    targetLanguage: 'en-US',
    routing: { type: 'sip', direction: 'inbound' },
    metadata: { callId: 'abc@pbx', from: '+4930123', to: '+4940456' },
    idempotencyKey: `call-${keySeq}-${Date.now()}`,
    ...overrides,
  };
}

async function rejection(p: Promise<unknown>): Promise<KallglotError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(KallglotError);
    return e as KallglotError;
  }
  throw new Error('expected the promise to reject');
}

beforeEach(async () => {
  sandbox = new KallglotSandbox();
  ({ url: baseUrl } = await sandbox.start(0));
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of extraSandboxes.splice(0)) await s.stop();
  await sandbox.stop();
});

describe('KallglotClient against the sandbox: success paths', () => {
  it('creates, gets and ends a session', async () => {
    const c = client();
    const created = await c.createSession(input({ recording: { enabled: true, channels: 'dual' } }));
    expect(created.id).toMatch(/^sess_/);
    expect(created.status).toBe('created');
    expect(created.mode).toBe('bidirectional_translation');
    expect(created.sourceLanguage).toBe('de');
    expect(created.targetLanguage).toBe('en-US');
    expect(created.stream?.url).toBe(`ws://127.0.0.1:${new URL(baseUrl).port}/v1/sessions/${created.id}/connect`);
    expect(created.stream?.token).toMatch(/^kst_/);
    expect(Date.parse(created.stream?.expiresAt ?? '')).toBeGreaterThan(Date.now());
    expect(created.metadata).toEqual({ callId: 'abc@pbx', from: '+4930123', to: '+4940456' });
    expect(created.createdAt).toBeDefined();
    expect((created.raw as { object: string }).object).toBe('session');

    const fetched = await c.getSession(created.id);
    expect(fetched.id).toBe(created.id);
    expect(fetched.status).toBe('created');

    const ended = await c.endSession(created.id, 'customer_hangup');
    expect(ended.status).toBe('ended');
    expect(ended.endReason).toBe('customer_hangup');
    expect(ended.endedAt).toBeDefined();
    expect((ended.raw as { duration_seconds: number }).duration_seconds).toBeGreaterThanOrEqual(0);
    expect(sandbox.stats()).toMatchObject({ created: 1, ended: 1, createRequests: 1, endRequests: 1, getRequests: 1 });
  });

  it('sends the body with routing (never provider), as the sandbox records it', async () => {
    const c = client();
    const s = await c.createSession(
      input({ routing: { type: 'sip', connectionId: 'pcon_123', direction: 'outbound', phoneNumber: '+4930555' } }),
    );
    const [record] = sandbox.sessions();
    expect(record?.id).toBe(s.id);
    expect(record?.routing).toEqual({
      type: 'sip',
      connection_id: 'pcon_123',
      direction: 'outbound',
      phone_number: '+4930555',
    });
    expect(record?.sourceLanguage).toBe('de');
    expect(record?.targetLanguage).toBe('en-US');
  });

  it('makes one session for two creates with the same Idempotency-Key', async () => {
    const c = client();
    const req = input();
    const a = await c.createSession(req);
    const b = await c.createSession(req);
    expect(b.id).toBe(a.id);
    expect(b.stream?.token).toBe(a.stream?.token);
    expect(sandbox.stats()).toMatchObject({ created: 1, createRequests: 2 });
    expect(sandbox.sessions().map((s) => s.idempotencyKey)).toEqual([req.idempotencyKey]);

    const other = await c.createSession(input());
    expect(other.id).not.toBe(a.id);
    expect(sandbox.stats().created).toBe(2);
  });

  it('returns the one session when the server created it but the answers were lost to timeouts', async () => {
    // The first two attempts are processed after the client gave up on them; the third sees the replay.
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 400, times: 2 });
    const c = client({ requestTimeoutMs: 250, retries: 4, backoffBaseMs: 10 });
    const s = await c.createSession(input());
    await new Promise((r) => setTimeout(r, 500)); // let the delayed requests finish on the server
    expect(sandbox.stats().createRequests).toBeGreaterThanOrEqual(3);
    expect(sandbox.stats().created).toBe(1);
    expect(sandbox.sessions().map((r) => r.id)).toEqual([s.id]);
  });

  it('ends idempotently: a second end returns the first summary', async () => {
    const c = client();
    const s = await c.createSession(input());
    const first = await c.endSession(s.id, 'agent_hangup');
    const second = await c.endSession(s.id, 'completed');
    expect(second.endReason).toBe('agent_hangup');
    expect(second.endedAt).toBe(first.endedAt);
    expect(sandbox.stats()).toMatchObject({ ended: 1, endRequests: 2 });
    expect(sandbox.sessions()[0]?.endCalls).toBe(2);
  });

  it('retries an end that hit a 503', async () => {
    const c = client({ backoffBaseMs: 10 });
    const s = await c.createSession(input());
    sandbox.injectFailure({ endpoint: 'end', status: 503, times: 1 });
    const ended = await c.endSession(s.id, 'completed');
    expect(ended.status).toBe('ended');
    expect(sandbox.stats()).toMatchObject({ ended: 1, endRequests: 2 });
  });
});

describe('KallglotClient against the sandbox: errors', () => {
  it('400 validation errors carry code and param and are not retried', async () => {
    const c = client();
    const badMode = await rejection(c.createSession(input({ mode: 'karaoke' as SessionMode })));
    expect(badMode).toMatchObject({ status: 400, code: 'invalid_mode', param: 'mode', type: 'invalid_request_error' });
    expect(badMode.requestId).toMatch(/^req_/);
    const badLang = await rejection(c.createSession(input({ sourceLanguage: 'german' })));
    expect(badLang).toMatchObject({ status: 400, code: 'invalid_language_code', param: 'source_language' });
    expect(isRetryable(badLang)).toBe(false);
    expect(sandbox.stats()).toMatchObject({ createRequests: 2, created: 0 });
  });

  it('401 for a wrong API key is an account problem and is not retried', async () => {
    const strict = new KallglotSandbox({ apiKey: 'sk_test_right' });
    extraSandboxes.push(strict);
    const { url } = await strict.start(0);
    const err = await rejection(client({ baseUrl: url, apiKey: 'sk_test_wrong' }).createSession(input()));
    expect(err).toMatchObject({ status: 401, code: 'invalid_api_key', type: 'authentication_error' });
    expect(isAccountProblem(err)).toBe(true);
    expect(strict.stats().createRequests).toBe(1);
    const ok = await client({ baseUrl: url, apiKey: 'sk_test_right' }).createSession(input());
    expect(ok.id).toMatch(/^sess_/);
  });

  it('402 insufficient_api_credits is not retried', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 402 });
    const err = await rejection(client({ retries: 3 }).createSession(input()));
    expect(err).toMatchObject({ status: 402, code: 'insufficient_api_credits' });
    expect(isAccountProblem(err)).toBe(true);
    expect(isRetryable(err)).toBe(false);
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('402 once the sandbox credit budget is used up', async () => {
    const limited = new KallglotSandbox({ credits: 1 });
    extraSandboxes.push(limited);
    const { url } = await limited.start(0);
    const c = client({ baseUrl: url });
    await c.createSession(input());
    const err = await rejection(c.createSession(input()));
    expect(err).toMatchObject({ status: 402, code: 'insufficient_api_credits' });
    expect(limited.stats()).toMatchObject({ created: 1, createRequests: 2 });
  });

  it('403 organization_inactive is not retried', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 403, code: 'organization_inactive' });
    const err = await rejection(client({ retries: 3 }).createSession(input()));
    expect(err).toMatchObject({ status: 403, code: 'organization_inactive', type: 'permission_error' });
    expect(isAccountProblem(err)).toBe(true);
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('429 with Retry-After is retried after the wait and then succeeds', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 429, retryAfterSec: 1, times: 1 });
    const started = Date.now();
    const s = await client({ createDeadlineMs: 2500 }).createSession(input());
    expect(s.id).toMatch(/^sess_/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950); // Retry-After was honoured, not replaced by backoff
    expect(sandbox.stats()).toMatchObject({ createRequests: 2, created: 1 });
  });

  it('429 whose Retry-After passes the deadline fails at once with rate_limit_exceeded', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 429, retryAfterSec: 5 });
    const started = Date.now();
    const err = await rejection(client({ createDeadlineMs: 2000 }).createSession(input()));
    expect(err).toMatchObject({
      status: 429,
      code: 'rate_limit_exceeded',
      type: 'rate_limit_error',
      retryAfterMs: 5000,
    });
    expect(isRateLimited(err)).toBe(true);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('500 is retried and then succeeds', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 500, times: 2 });
    const s = await client({ retries: 2, backoffBaseMs: 20 }).createSession(input());
    expect(s.status).toBe('created');
    expect(sandbox.stats()).toMatchObject({ createRequests: 3, created: 1 });
  });

  it('503 exhausts the retries and reports the last error', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 503 });
    const err = await rejection(client({ retries: 2, backoffBaseMs: 20 }).createSession(input()));
    expect(err).toMatchObject({ status: 503, code: 'service_unavailable' });
    expect(isRetryable(err)).toBe(true);
    expect(sandbox.stats().createRequests).toBe(3);
  });

  it('501 is not retried', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 501 });
    const err = await rejection(client({ retries: 2 }).createSession(input()));
    expect(err.status).toBe(501);
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('a non-JSON error body still yields a KallglotError with code http_<status>', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 502, rawBody: '<html>Bad Gateway</html>' });
    const err = await rejection(client({ retries: 0 }).createSession(input()));
    expect(err).toMatchObject({ status: 502, code: 'http_502' });
    expect(err.requestId).toMatch(/^req_/);
  });

  it('a hung create times out per attempt and settles by the create deadline', async () => {
    sandbox.injectFailure({ endpoint: 'create', hang: true });
    const started = Date.now();
    const err = await rejection(
      client({ requestTimeoutMs: 300, retries: 10, createDeadlineMs: 1000 }).createSession(input()),
    );
    const elapsed = Date.now() - started;
    expect(err.code).toBe('timeout');
    expect(err.status).toBeUndefined();
    expect(sandbox.stats().createRequests).toBeGreaterThanOrEqual(2);
    expect(elapsed).toBeLessThan(1000 + 1000);
  });

  it('reports deadline_exceeded when no attempt finished before the deadline', async () => {
    sandbox.injectFailure({ endpoint: 'create', hang: true });
    const err = await rejection(client({ requestTimeoutMs: 5000, createDeadlineMs: 300 }).createSession(input()));
    expect(err.code).toBe('deadline_exceeded');
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('network errors are retried and reported as network_error', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) });
    const err = await rejection(
      client({ baseUrl: `http://127.0.0.1:${port}/v1`, retries: 2, backoffBaseMs: 10, logger }).createSession(input()),
    );
    expect(err.code).toBe('network_error');
    expect(isRetryable(err)).toBe(true);
    expect(lines.filter((l) => l.includes('kallglot request failed'))).toHaveLength(3);
  });

  it('404 for an unknown session on get and end, without retries', async () => {
    const c = client();
    const getErr = await rejection(c.getSession('sess_nope'));
    expect(getErr).toMatchObject({ status: 404, code: 'resource_not_found' });
    const endErr = await rejection(c.endSession('sess_nope', 'completed'));
    expect(endErr.status).toBe(404);
    expect(sandbox.stats()).toMatchObject({ getRequests: 1, endRequests: 1 });
  });

  it('a caller abort ends the create with code aborted', async () => {
    sandbox.injectFailure({ endpoint: 'create', hang: true });
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 100);
    const err = await rejection(client({ requestTimeoutMs: 1500 }).createSession(input(), { signal: ac.signal }));
    expect(err.code).toBe('aborted');
    expect(sandbox.stats().createRequests).toBe(1);
  });

  it('never logs the API key', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'trace' }, { write: (s: string) => void lines.push(s) });
    sandbox.injectFailure({ endpoint: 'create', status: 500, times: 1 });
    const c = client({ logger, backoffBaseMs: 10 });
    const s = await c.createSession(input());
    await c.endSession(s.id, 'completed');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.join('\n')).not.toContain(API_KEY);
  });
});

describe('KallglotClient: whether a failed create may have made a session (outcomeUnknown)', () => {
  it('a create that timed out: unknown, and it stays unknown whatever a later attempt answered', async () => {
    sandbox.injectFailure({ endpoint: 'create', hang: true, times: 1 });
    sandbox.injectFailure({ endpoint: 'create', status: 503 });
    const err = await rejection(
      client({ requestTimeoutMs: 200, retries: 1, backoffBaseMs: 10, createDeadlineMs: 2000 }).createSession(input()),
    );
    expect(err).toMatchObject({ status: 503, outcomeUnknown: true });
  });

  it('the deadline cut the only attempt: unknown', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 600, times: 1 });
    const err = await rejection(client({ requestTimeoutMs: 5000, createDeadlineMs: 200 }).createSession(input()));
    expect(err).toMatchObject({ code: 'deadline_exceeded', outcomeUnknown: true });
    await new Promise((r) => setTimeout(r, 600));
    expect(sandbox.stats().created).toBe(1); // it was made after all: what sessions/create-resolver.ts is for
  });

  it.each([
    [500, true],
    [502, true],
    [503, false],
    [429, false],
    [400, false],
  ])('an answer %i on every attempt: unknown %s', async (status, unknown) => {
    sandbox.injectFailure({ endpoint: 'create', status, retryAfterSec: 0 });
    const err = await rejection(client({ retries: 1, backoffBaseMs: 5 }).createSession(input()));
    expect(err).toMatchObject({ status, outcomeUnknown: unknown });
  });

  it('a refused connection sent nothing: known', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await rejection(
      client({ baseUrl: `http://127.0.0.1:${port}/v1`, retries: 1, backoffBaseMs: 5 }).createSession(input()),
    );
    expect(err).toMatchObject({ code: 'network_error', outcomeUnknown: false });
  });

  it('a background create runs under the end deadline, not the create deadline', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 400, times: 1 });
    const c = client({ requestTimeoutMs: 1000, retries: 0, createDeadlineMs: 200, endDeadlineMs: 3000 });
    const s = await c.createSession(input(), { background: true });
    expect(s.status).toBe('created');
  });
});

describe('buildCreateSessionBody', () => {
  it('maps every field to the snake_case wire shape with routing', () => {
    expect(
      buildCreateSessionBody({
        mode: 'assistive_translation',
        sourceLanguage: 'de',
        targetLanguage: 'es',
        routing: { type: 'sip', phoneNumber: '+4930123', connectionId: 'pcon_1', direction: 'inbound' },
        recording: { enabled: true, channels: 'dual' },
        metadata: { callId: 'x' },
        idempotencyKey: 'k',
      }),
    ).toEqual({
      mode: 'assistive_translation',
      source_language: 'de',
      target_language: 'es',
      routing: { type: 'sip', phone_number: '+4930123', connection_id: 'pcon_1', direction: 'inbound' },
      recording: { enabled: true, channels: 'dual' },
      metadata: { callId: 'x' },
    });
  });

  it('leaves out unset fields and never sends provider or the idempotency key', () => {
    const body = buildCreateSessionBody({ mode: 'ai_agent', routing: {}, idempotencyKey: 'k' });
    expect(body).toEqual({ mode: 'ai_agent' });
    expect(JSON.stringify(body)).not.toContain('provider');
  });
});
