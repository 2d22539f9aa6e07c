/**
 * CreateResolver over a fake API with fake timers: which failures are resolved, the backoff and its bound, definitive
 * answers, and the races with later creates of the same key. (Against the real client and sandbox:
 * create-resolver-sandbox.test.ts.)
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { pino } from 'pino';
import {
  CreateResolver,
  type CreateResolverOptions,
  type ResolutionOutcome,
} from '../../src/sessions/create-resolver.ts';
import { KallglotError } from '../../src/kallglot/errors.ts';
import type { CreateSessionInput, EndReason, KallglotSession } from '../../src/kallglot/types.ts';

const logger = pino({ level: 'silent' });

function unknownOutcome(code = 'deadline_exceeded'): KallglotError {
  const e = new KallglotError('lost', { code });
  e.outcomeUnknown = true;
  return e;
}

const answer = (status: number, code = `http_${status}`, retryAfterMs?: number): KallglotError =>
  new KallglotError('no', { status, code, ...(retryAfterMs !== undefined && { retryAfterMs }) });

const session = (id: string, status = 'created'): KallglotSession => ({ id, status, mode: 'x', raw: {} });

function input(callId = 'a@pbx'): CreateSessionInput {
  return {
    mode: 'bidirectional_translation',
    metadata: { sip_call_id: callId },
    idempotencyKey: `sip-${callId}`,
  };
}

type Reply = KallglotSession | KallglotError | Promise<KallglotSession>;

/** A fake API answering creates from a script (the last answer repeats), recording every call. */
function rig(script: Reply[], opts: CreateResolverOptions = {}) {
  const creates: Array<{ key: string; background: boolean }> = [];
  const ends: Array<{ id: string; reason: EndReason; detail?: string; callId?: string }> = [];
  const outcomes: ResolutionOutcome[] = [];
  let n = 0;
  const api = {
    createSession: async (i: CreateSessionInput, o?: { background?: boolean }) => {
      creates.push({ key: i.idempotencyKey, background: o?.background === true });
      const reply = script[Math.min(n++, script.length - 1)]!;
      if (reply instanceof KallglotError) throw reply;
      return reply;
    },
    getSession: async (id: string) => session(id),
  };
  const ender = {
    end: (id: string, reason: EndReason, detail?: string, callId?: string) => ends.push({ id, reason, detail, callId }),
  };
  const resolver = new CreateResolver(api, ender, logger, {
    firstDelayMs: 100,
    maxDelayMs: 1000,
    giveUpAfterMs: 10_000,
    onResolved: (o) => outcomes.push(o),
    ...opts,
  });
  return { resolver, creates, ends, outcomes };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('CreateResolver: a create of unknown outcome', () => {
  it('is re-sent in the background with the same key, and the session it made is ended once, with a reason', async () => {
    const r = rig([unknownOutcome(), session('sess_late')]);
    await expect(r.resolver.createSession(input())).rejects.toMatchObject({ code: 'deadline_exceeded' });
    expect(r.resolver.pending()).toBe(1);
    expect(r.ends).toEqual([]);
    await vi.advanceTimersByTimeAsync(100);
    expect(r.creates).toEqual([
      { key: 'sip-a@pbx', background: false },
      { key: 'sip-a@pbx', background: true },
    ]);
    expect(r.ends).toEqual([{ id: 'sess_late', reason: 'error', detail: 'create_deadline_exceeded', callId: 'a@pbx' }]);
    expect(r.outcomes).toEqual(['ended']);
    expect(r.resolver.pending()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(2);
  });

  it('is not resolved when the failure says nothing was made (4xx, connection refused)', async () => {
    const known = new KallglotError('refused', { code: 'network_error' });
    const r = rig([answer(402, 'insufficient_api_credits'), known, answer(400)]);
    for (let i = 0; i < 3; i++) await expect(r.resolver.createSession(input(`c${i}`))).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(3);
    expect(r.resolver.pending()).toBe(0);
    expect(r.outcomes).toEqual([]);
  });

  it('keeps trying with growing waits while nothing answers, and gives up at the bound', async () => {
    const r = rig([unknownOutcome('timeout')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(10_000);
    const tries = r.creates.length - 1;
    // 100 ms doubling (halved by jitter at worst) up to 1 s: at least 6 and at most about 10_000 / 500 + 5 re-POSTs.
    expect(tries).toBeGreaterThanOrEqual(6);
    expect(tries).toBeLessThanOrEqual(25);
    expect(r.outcomes).toEqual(['gave_up']);
    expect(r.resolver.pending()).toBe(0);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates.length - 1).toBe(tries);
    expect(r.ends).toEqual([]);
  });

  it.each([
    [400, 'invalid_request'],
    [402, 'insufficient_api_credits'],
    [403, 'organization_inactive'],
    [422, 'validation_failed'],
    [501, 'not_implemented'],
  ])('stops at a definitive %i: the key made no session', async (status, code) => {
    const r = rig([unknownOutcome(), answer(status, code)]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.outcomes).toEqual(['none']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(2);
    expect(r.ends).toEqual([]);
  });

  it('tries again after 409, 429 (honouring Retry-After), 500, 502 and 503, then ends the session', async () => {
    const r = rig([
      unknownOutcome(),
      answer(409, 'conflict'),
      answer(429, 'rate_limit_exceeded', 5000),
      Object.assign(answer(500), { outcomeUnknown: true }),
      Object.assign(answer(502), { outcomeUnknown: true }),
      answer(503),
      session('sess_1'),
    ]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(1000); // the 409 (100 ms), then the 429 (≤ 200 ms)
    expect(r.creates).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(3000);
    expect(r.creates).toHaveLength(3); // Retry-After 5 s, not the 400 ms backoff
    await vi.advanceTimersByTimeAsync(10_000);
    expect(r.creates).toHaveLength(7);
    expect(r.ends.map((e) => e.id)).toEqual(['sess_1']);
    expect(r.outcomes).toEqual(['ended']);
  });

  it('a session that comes back already ended is not ended again', async () => {
    const r = rig([unknownOutcome(), session('sess_1', 'ended')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.ends).toEqual([]);
    expect(r.outcomes).toEqual(['ended']);
  });
});

describe('CreateResolver: races with creates of the same key', () => {
  it('a later create of the same key that succeeds holds the session: the resolution is dropped', async () => {
    const r = rig([unknownOutcome(), session('sess_1')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    // Telnyx re-posts the webhook, or the PBX re-sends the INVITE: same call, same key, before the first re-POST.
    await expect(r.resolver.createSession(input())).resolves.toMatchObject({ id: 'sess_1' });
    expect(r.outcomes).toEqual(['claimed']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(2);
    expect(r.ends).toEqual([]);
  });

  it('a session found while a create of the same key is in flight is left to that create', async () => {
    let settleLive: (s: KallglotSession) => void = () => {};
    const live = new Promise<KallglotSession>((resolve) => {
      settleLive = resolve;
    });
    const r = rig([unknownOutcome(), live, session('sess_1')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    const second = r.resolver.createSession(input()); // in flight until settleLive
    await vi.advanceTimersByTimeAsync(100);
    expect(r.creates).toHaveLength(2); // the resolution waits while a create of its key is in flight
    settleLive(session('sess_1'));
    await expect(second).resolves.toMatchObject({ id: 'sess_1' });
    expect(r.outcomes).toEqual(['claimed']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.ends).toEqual([]);
  });

  it('a re-POST answered while a create of the same key started meanwhile: not ended, left to that create', async () => {
    let answerRepost: (s: KallglotSession) => void = () => {};
    const repost = new Promise<KallglotSession>((resolve) => {
      answerRepost = resolve;
    });
    let settleLive: (s: KallglotSession) => void = () => {};
    const live = new Promise<KallglotSession>((resolve) => {
      settleLive = resolve;
    });
    const r = rig([unknownOutcome(), repost, live]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(100); // the re-POST is in flight
    const second = r.resolver.createSession(input());
    answerRepost(session('sess_1'));
    await vi.advanceTimersByTimeAsync(0);
    expect(r.ends).toEqual([]);
    settleLive(session('sess_1'));
    await expect(second).resolves.toMatchObject({ id: 'sess_1' });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.ends).toEqual([]);
    expect(r.outcomes).toEqual(['claimed']);
  });

  it('a create answered with a session a resolution already ended is refused: the call falls back', async () => {
    const r = rig([unknownOutcome(), session('sess_1'), session('sess_1', 'ended')]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(100);
    expect(r.ends.map((e) => e.id)).toEqual(['sess_1']);
    const late = await r.resolver.createSession(input()).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'session_ended', outcomeUnknown: false });
    expect(r.resolver.pending()).toBe(0);
  });
});

describe('CreateResolver: bounds', () => {
  it('drops resolutions beyond maxPending, and runs at most maxConcurrent re-POSTs at once', async () => {
    const hanging = new Promise<KallglotSession>(() => {});
    const r = rig([unknownOutcome(), unknownOutcome(), unknownOutcome(), hanging], { maxPending: 2, maxConcurrent: 1 });
    for (const id of ['a', 'b', 'c']) await expect(r.resolver.createSession(input(id))).rejects.toThrow();
    expect(r.outcomes).toEqual(['dropped']);
    expect(r.resolver.pending()).toBe(2);
    await vi.advanceTimersByTimeAsync(5000);
    expect(r.creates.filter((c) => c.background)).toHaveLength(1);
  });

  it('stop() starts no more re-POSTs', async () => {
    const r = rig([unknownOutcome()]);
    await expect(r.resolver.createSession(input())).rejects.toThrow();
    r.resolver.stop();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(1);
    await expect(r.resolver.createSession(input('later'))).rejects.toThrow();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(r.creates).toHaveLength(2);
  });
});
