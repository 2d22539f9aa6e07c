/**
 * The registry port's promises (src/registry/port.ts), one suite run against both adapters: SQLite (the default)
 * and PostgreSQL (REGISTRY_URL, a real server started by test/helpers/postgres.ts). Every result is awaited, as the
 * gateway does, so the same body holds for the synchronous and the asynchronous adapter.
 */
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { RegistryPort } from '../../src/registry/port.ts';
import { type Adapter, type AdapterStore, postgresAdapter, sqliteAdapter } from './adapters.ts';

const adapters: Adapter[] = [sqliteAdapter(), postgresAdapter()];

afterAll(async () => {
  await Promise.all(adapters.map((a) => a.shutdown()));
}, 30_000);

describe.each(adapters)('registry port on $name', (adapter) => {
  let store: AdapterStore | undefined;
  const fresh = async (): Promise<AdapterStore> => {
    store = await adapter.store();
    return store;
  };
  afterEach(async () => {
    await store?.close();
    store = undefined;
  });

  it('records a call through its life; a second start or end of the same call is refused', async () => {
    const reg = await (await fresh()).open();
    expect(await reg.callStarted({ callId: 'c1', pbxSource: '10.0.0.1', from: '+1555', to: '+4930', rule: 'de' })).toBe(
      true,
    );
    expect(await reg.callStarted({ callId: 'c1' })).toBe(false);
    await reg.update('c1', { sessionId: 'sess_1', telnyxUri: 'sip:sess_1@sip.telnyx.com', route: 'translated' });
    await reg.update('c1', { answerAt: 1500 });
    expect((await reg.active()).map((c) => c.call_id)).toEqual(['c1']);
    expect(await reg.callEnded('c1', { reason: 'bye_from_pbx', sipStatus: 200 })).toBe(true);
    expect(await reg.callEnded('c1', { reason: 'again' })).toBe(false);
    expect(await reg.get('c1')).toMatchObject({
      call_id: 'c1',
      kind: 'sip',
      state: 'ended',
      session_id: 'sess_1',
      route: 'translated',
      answer_at: 1500,
      end_reason: 'bye_from_pbx',
      sip_status: 200,
      from_user: '+1555',
      instance_id: 'gw-a',
      owner: reg.owner,
    });
    expect(typeof (await reg.get('c1'))?.invite_at).toBe('number');
    expect((await reg.bySession('sess_1'))?.call_id).toBe('c1');
    expect(await reg.active()).toEqual([]);
    expect((await reg.recent(10)).map((c) => c.call_id)).toEqual(['c1']);
    expect(await reg.get('unknown')).toBeUndefined();
  });

  it('applies writes made without waiting in order, and a read sees them (read-your-writes)', async () => {
    const reg = await (await fresh()).open();
    // As the SIP path writes: nothing awaited.
    void reg.callStarted({ callId: 'c2', kind: 'texml' });
    void reg.update('c2', { sessionId: 'sess_2' });
    void reg.callEnded('c2', { reason: 'hangup', route: 'translated' });
    void reg.addEvent('c2', 'call.hangup', { hangup_cause: 'normal_clearing' }, 'evt-c2');
    expect(await reg.get('c2')).toMatchObject({ state: 'ended', session_id: 'sess_2', route: 'translated' });
    expect(await reg.events('c2')).toMatchObject([{ type: 'call.hangup', data: { hangup_cause: 'normal_clearing' } }]);
  });

  it('commitNow makes the writes so far visible to another process run', async () => {
    const s = await fresh();
    const reg = await s.open();
    void reg.callStarted({ callId: 'c3' });
    void reg.update('c3', { sessionId: 'sess_3' });
    await reg.commitNow();
    if (adapter.name === 'postgres') {
      const other = await s.open('gw-b');
      expect((await other.get('c3'))?.session_id).toBe('sess_3');
    }
  });

  it('claims a session end once, and never again once it is confirmed', async () => {
    const s = await fresh();
    const reg = await s.open();
    await reg.callStarted({ callId: 'c4' });
    await reg.update('c4', { sessionId: 'sess_4' });
    expect(await reg.addPendingEnd('sess_4', 'c4', 'agent_hangup', 'bye_from_pbx')).toBe(true);
    expect(await reg.addPendingEnd('sess_4', 'c4', 'error', 'second request')).toBe(false);
    await reg.endAttemptFailed('sess_4', 'http 503');
    expect(await reg.pendingEnds()).toMatchObject([
      { session_id: 'sess_4', call_id: 'c4', reason: 'agent_hangup', detail: 'bye_from_pbx', attempts: 1 },
    ]);
    expect((await reg.get('c4'))?.session_end_status).toBe('pending');
    await reg.sessionEndConfirmed('sess_4', 'ended');
    expect(await reg.pendingEnds()).toEqual([]);
    expect((await reg.get('c4'))?.session_end_status).toBe('ended');
    expect(await reg.addPendingEnd('sess_4', 'c4', 'completed', 'late webhook')).toBe(false);
    expect(await reg.pendingEnds()).toEqual([]);
  });

  it('persists pending ends across a restart of the instance', async () => {
    const s = await fresh();
    const first = await s.open();
    await first.addPendingEnd('sess_5', undefined, 'completed');
    await first.commitNow();
    const second = await s.open();
    expect((await second.pendingEnds()).map((p) => p.session_id)).toEqual(['sess_5']);
  });

  it('deduplicates events by key, keeps events without a key, in order', async () => {
    const reg = await (await fresh()).open();
    expect(await reg.addEvent('c6', 'call.answered', { a: 1 }, 'evt-1')).toBe(true);
    expect(await reg.addEvent('c6', 'call.answered', { a: 1 }, 'evt-1')).toBe(false);
    expect(await reg.addEvent('c6', 'note', undefined)).toBe(true);
    expect(await reg.addEvent('c6', 'note', null)).toBe(true);
    expect((await reg.events('c6')).map((e) => e.type)).toEqual(['call.answered', 'note', 'note']);
    expect((await reg.events('c6'))[0]?.data).toEqual({ a: 1 });
  });

  it('start-up recovery closes the SIP calls of the previous run once, and queues their session ends', async () => {
    const s = await fresh();
    const before = await s.open();
    await before.callStarted({ callId: 'sip-1' });
    await before.update('sip-1', { sessionId: 'sess_a' });
    await before.callStarted({ callId: 'sip-2' }); // no session yet
    await before.callStarted({ callId: 'texml-1', kind: 'texml' });
    await before.update('texml-1', { sessionId: 'sess_t' });
    await before.commitNow();
    const after = await s.open();
    await after.callStarted({ callId: 'mine' });
    const closed = await after.closeOrphans({ endReason: 'gateway_restart', detail: 'gateway_restart' });
    expect(closed.map((r) => r.call_id).sort((a, b) => a.localeCompare(b))).toEqual(['sip-1', 'sip-2']);
    expect(closed.every((r) => r.state === 'ended' && r.end_reason === 'gateway_restart')).toBe(true);
    expect(await after.pendingEnds()).toMatchObject([
      { session_id: 'sess_a', call_id: 'sip-1', reason: 'error', detail: 'gateway_restart' },
    ]);
    expect((await after.get('sip-1'))?.session_end_status).toBe('pending');
    // TeXML calls live at Telnyx and end by webhook; this run's own calls are not orphans.
    expect((await after.active()).map((r) => r.call_id).sort((a, b) => a.localeCompare(b))).toEqual([
      'mine',
      'texml-1',
    ]);
    expect(await after.closeOrphans({ endReason: 'gateway_restart', detail: 'gateway_restart' })).toEqual([]);
  });

  it('closes the SIP calls of a named instance and takes over its pending ends', async () => {
    const s = await fresh();
    const dead = await s.open('gw-dead');
    await dead.callStarted({ callId: 'd1' });
    await dead.update('d1', { sessionId: 'sess_d1' });
    await dead.addPendingEnd('sess_old', 'd0', 'completed', 'bye_from_pbx');
    void dead.createUnresolved({
      idempotencyKey: 'sip-d2',
      callId: 'd2',
      request: '{}',
      code: 'http_502',
      failedAt: 7,
    });
    await dead.commitNow();
    const survivor = await s.open('gw-live');
    if (adapter.name === 'postgres') expect(await survivor.unresolvedCreates()).toEqual([]); // gw-dead's, not yet ours
    await survivor.callStarted({ callId: 'l1' });
    const closed = await survivor.closeOrphans({
      instanceId: 'gw-dead',
      endReason: 'instance_lost',
      detail: 'instance_lost',
    });
    expect(closed.map((r) => [r.call_id, r.end_reason, r.instance_id])).toEqual([['d1', 'instance_lost', 'gw-dead']]);
    expect((await survivor.active()).map((r) => r.call_id)).toEqual(['l1']);
    // The survivor resolves the dead instance's creates of unknown outcome (SQLite: every row is this process's).
    expect((await survivor.unresolvedCreates()).map((u) => u.idempotency_key)).toEqual(['sip-d2']);
    if (adapter.name === 'postgres') {
      // Pending ends belong to an instance on a shared registry: the survivor now sees both through.
      expect((await survivor.pendingEnds()).map((p) => p.session_id).sort((a, b) => a.localeCompare(b))).toEqual([
        'sess_d1',
        'sess_old',
      ]);
    }
  });

  it('keeps a create of unknown outcome across a restart, counts its re-sends, and forgets it once settled', async () => {
    const s = await fresh();
    const before = await s.open();
    const request = JSON.stringify({ mode: 'bidirectional_translation', idempotencyKey: 'sip-u1' });
    const unknown = { idempotencyKey: 'sip-u1', callId: 'u1', request, code: 'deadline_exceeded', failedAt: 1234 };
    // As the resolver writes: nothing awaited (group commit).
    const first = before.createUnresolved(unknown);
    const again = before.createUnresolved({ ...unknown, code: 'http_504', failedAt: 9999 });
    void before.createUnresolved({ idempotencyKey: 'sip-u0', request: '{}', code: 'http_500', failedAt: 1000 });
    void before.createAttempted('sip-u1');
    void before.createAttempted('sip-u1');
    expect([await first, await again]).toEqual([true, false]);
    await before.commitNow();
    const after = await s.open();
    expect(await after.unresolvedCreates()).toEqual([
      {
        idempotency_key: 'sip-u0',
        call_id: null,
        request: '{}',
        code: 'http_500',
        instance_id: 'gw-a',
        failed_at: 1000,
        attempts: 0,
      },
      {
        idempotency_key: 'sip-u1',
        call_id: 'u1',
        request,
        code: 'deadline_exceeded',
        instance_id: 'gw-a',
        failed_at: 1234,
        attempts: 2,
      },
    ]);
    void after.createSettled('sip-u1');
    void after.createSettled('sip-unknown');
    expect((await after.unresolvedCreates()).map((u) => u.idempotency_key)).toEqual(['sip-u0']);
  });

  it('prunes old ended calls with their events, never active calls or calls with a pending end', async () => {
    const reg = await (await fresh()).open();
    const old = Date.now() - 40 * 86_400_000;
    await endedCall(reg, 'gone', old);
    await reg.addEvent('gone', 'call.hangup', null, 'k-gone');
    await endedCall(reg, 'kept-pending', old, 'sess_p');
    await reg.addPendingEnd('sess_p', 'kept-pending', 'completed');
    await reg.callStarted({ callId: 'kept-active' });
    await reg.addEvent('stray', 'call.hangup', null);
    const cutoff = Date.now() - 30 * 86_400_000;
    // The stray event is new: only old ones go.
    expect(await reg.pruneEnded(cutoff, 100)).toEqual({ calls: 1, events: 1 });
    expect(await reg.get('gone')).toBeUndefined();
    expect(await reg.get('kept-pending')).toBeDefined();
    expect(await reg.get('kept-active')).toBeDefined();
    expect(await reg.pruneEnded(cutoff, 100)).toEqual({ calls: 0, events: 0 });
  });
});

/** An ended call whose end lies in the past (the adapters take `now` as an optional last argument). */
async function endedCall(reg: RegistryPort, callId: string, at: number, sessionId?: string): Promise<void> {
  const withTime = reg as RegistryPort & {
    callStarted(c: { callId: string }, now?: number): unknown;
    callEnded(id: string, end: { reason: string; sessionId?: string }, now?: number): unknown;
  };
  await withTime.callStarted({ callId }, at);
  await withTime.callEnded(callId, { reason: 'bye_from_pbx', ...(sessionId ? { sessionId } : {}) }, at);
}
