/**
 * The leak this guards against, with the real client, the real SessionEnder and the Kallglot sandbox: a create that
 * Kallglot answers after the client's deadline (the call has fallen back) leaves a session at Kallglot; it must end
 * up ended exactly once, with a reason.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import { KallglotClient } from '../../src/kallglot/client.ts';
import { KallglotError } from '../../src/kallglot/errors.ts';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import type { CreateSessionInput } from '../../src/kallglot/types.ts';
import { CreateResolver, type ResolutionOutcome } from '../../src/sessions/create-resolver.ts';
import { SessionEnder } from '../../src/sessions/ender.ts';

const logger = pino({ level: 'silent' });

let sandbox: KallglotSandbox;
let client: KallglotClient;
let ender: SessionEnder;
let resolver: CreateResolver;
const outcomes: ResolutionOutcome[] = [];
const ended: Array<{ id: string; reason: string; outcome: string }> = [];

function input(callId: string): CreateSessionInput {
  return {
    mode: 'bidirectional_translation',
    sourceLanguage: 'de',
    targetLanguage: 'en',
    routing: { type: 'sip' },
    metadata: { sip_call_id: callId },
    idempotencyKey: `sip-${callId}`,
  };
}

beforeEach(async () => {
  sandbox = new KallglotSandbox();
  const { url } = await sandbox.start(0);
  // The call's create: one attempt, gone after 300 ms (the deadline is shorter than the attempt timeout).
  client = new KallglotClient({
    baseUrl: url,
    apiKey: 'sk_test_x',
    requestTimeoutMs: 1000,
    retries: 0,
    createDeadlineMs: 300,
    endDeadlineMs: 2000,
  });
  ender = new SessionEnder(client, logger, { onEnded: (id, reason, outcome) => ended.push({ id, reason, outcome }) });
  resolver = new CreateResolver(client, ender, logger, {
    firstDelayMs: 50,
    maxDelayMs: 200,
    onResolved: (o) => outcomes.push(o),
  });
  outcomes.length = 0;
  ended.length = 0;
});

afterEach(async () => {
  resolver.stop();
  ender.stop();
  await sandbox.stop();
  await client.close();
});

describe('CreateResolver with the sandbox', () => {
  it('a create answered after the deadline: the call sees a failure, the session is ended once (error)', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 700, times: 1 });
    const err = await resolver.createSession(input('late@pbx')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KallglotError);
    expect(err).toMatchObject({ code: 'deadline_exceeded', outcomeUnknown: true });
    await vi.waitFor(() => expect(ended).toHaveLength(1), { timeout: 5000, interval: 20 });
    // Let the delayed original finish at the sandbox (it replays the same session): still one session, one end.
    await new Promise((r) => setTimeout(r, 800));
    const sessions = sandbox.sessions();
    expect(sessions).toHaveLength(1);
    expect(sessions[0]).toMatchObject({ idempotencyKey: 'sip-late@pbx', endReason: 'error', endCalls: 1 });
    expect(ended).toEqual([{ id: sessions[0]!.id, reason: 'error', outcome: 'ended' }]);
    expect(outcomes).toEqual(['ended']);
    expect(sandbox.stats()).toMatchObject({ created: 1, ended: 1, endRequests: 1 });
  });

  it('a create whose re-POSTs keep timing out for a while is still resolved once the API answers', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 2500, times: 3 });
    await expect(resolver.createSession(input('slow@pbx'))).rejects.toMatchObject({ outcomeUnknown: true });
    await vi.waitFor(() => expect(ended).toHaveLength(1), { timeout: 10_000, interval: 50 });
    await new Promise((r) => setTimeout(r, 2600)); // the delayed creates reach the sandbox and replay
    expect(sandbox.sessions()).toHaveLength(1);
    expect(sandbox.sessions()[0]).toMatchObject({ endReason: 'error', endCalls: 1 });
  }, 15_000);

  it('a create refused with a definitive answer (402) is not resolved: no session, no end', async () => {
    sandbox.injectFailure({ endpoint: 'create', status: 402 });
    await expect(resolver.createSession(input('broke@pbx'))).rejects.toMatchObject({ status: 402 });
    await new Promise((r) => setTimeout(r, 300));
    expect(sandbox.stats()).toMatchObject({ createRequests: 1, created: 0, endRequests: 0 });
    expect(resolver.pending()).toBe(0);
  });

  it('the call created the session after all (a later create of the same key): it is not ended behind its back', async () => {
    sandbox.injectFailure({ endpoint: 'create', latencyMs: 500, times: 1 });
    await expect(resolver.createSession(input('retry@pbx'))).rejects.toMatchObject({ outcomeUnknown: true });
    const again = await resolver.createSession(input('retry@pbx')); // e.g. Telnyx re-posting the same webhook
    expect(outcomes).toEqual(['claimed']);
    await new Promise((r) => setTimeout(r, 800));
    expect(sandbox.sessions()).toMatchObject([{ id: again.id, endCalls: 0 }]);
    expect(ended).toEqual([]);
  });
});
