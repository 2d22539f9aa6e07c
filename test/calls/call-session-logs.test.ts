/**
 * The log lines of real call flows (CallManager → CallSession → SessionEnder over the fake engine, through the
 * daemon's own logger): no line repeats a key. A key bound on a child logger (callId, sessionId) and passed again
 * at a call site is written twice by pino; JSON.parse would hide it, so the raw text is checked.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { KallglotError } from '../../src/kallglot/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { duplicateKeys } from '../helpers/json-keys.ts';
import { harness, TELNYX_SDP, type Harness } from './call-harness.ts';
import { settle } from './fake-engine.ts';

const SDP = 'application/sdp';

function capture(level = 'trace'): { lines: string[]; h: (env?: Record<string, string>) => Harness } {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(line);
      cb();
    },
  });
  return { lines, h: (env = {}) => harness(env, undefined, createLogger(level, sink)) };
}

function expectNoDuplicateKeys(lines: string[]): void {
  expect(lines.length).toBeGreaterThan(0);
  for (const line of lines) expect(duplicateKeys(line), line).toEqual([]);
}

function parsed(lines: string[], msg: string): Array<Record<string, unknown>> {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);
}

describe('duplicateKeys', () => {
  it('sees repeated keys at any depth, and not equal values or keys of sibling objects', () => {
    expect(duplicateKeys('{"a":1,"b":"a","c":{"a":2}}')).toEqual([]);
    expect(duplicateKeys('{"a":1,"b":2,"a":3}')).toEqual(['a']);
    expect(duplicateKeys('{"x":{"k":"v","k":"w"},"l":[{"m":1},{"m":2,"m":3}]}')).toEqual(['x.k', 'l.m']);
    expect(duplicateKeys('{"s":"a \\" , \\"s\\":1","t":2}')).toEqual([]);
  });
});

describe('call flow log lines', () => {
  it('a translated call, answered, re-INVITEd and hung up: every line once per key, ids bound once', async () => {
    const { lines, h: make } = capture();
    const h = make();
    const pbx = await h.call({ callId: 'c-1@pbx' });
    await h.createOk('ses_1');
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    const pbxDlg = pbx.ack();
    await settle();
    pbxDlg.receive('INVITE', { body: TELNYX_SDP, contentType: SDP });
    await settle();
    tel.remoteBye();
    await settle();
    h.assertClean();
    expectNoDuplicateKeys(lines);

    const [bridged] = parsed(lines, 'call answered and bridged');
    expect(bridged).toMatchObject({ callId: 'c-1@pbx', sessionId: 'ses_1', route: 'translated' });
    const summaries = parsed(lines, 'call summary');
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({ callId: 'c-1@pbx', sessionId: 'ses_1', endReason: 'bye_from_telnyx' });
    expect(parsed(lines, 'ending Kallglot session')[0]).toMatchObject({ sessionId: 'ses_1', callId: 'c-1@pbx' });
  });

  it('cancel, fallback, busy, bypass and admission refusal: no duplicated key either', async () => {
    const { lines, h: make } = capture();
    const h = make({ MAX_CONCURRENT_CALLS: '1' });
    const cancelled = await h.call();
    cancelled.cancel();
    await settle();
    await h.createOk('ses_late');

    const fallback = await h.call({ called: '+4930123456' });
    await h.createFails(new KallglotError('boom', { status: 500, code: 'internal_error' }));
    h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    const dlg = fallback.ack();
    await settle();
    const refused = await h.call({ called: '112' }); // over MAX_CONCURRENT_CALLS
    expect(refused.finalResponse?.status).toBeGreaterThanOrEqual(400);
    dlg.remoteBye();
    await settle();

    const busy = capture();
    const hb = busy.h({ RATE_LIMIT_POLICY: 'busy' });
    await hb.call();
    await hb.createFails(new KallglotError('slow', { status: 429, code: 'rate_limit_exceeded' }));
    const bypass = await hb.call({ called: '112' });
    hb.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    bypass.ack().remoteBye();
    await settle();

    h.assertClean();
    hb.assertClean();
    expectNoDuplicateKeys(lines);
    expectNoDuplicateKeys(busy.lines);
    expect(parsed(lines, 'call summary')).toHaveLength(3);
    expect(parsed(busy.lines, 'call summary')).toHaveLength(2);
  });

  it('at info a normal call is one line, its summary, with what an operator needs (issue 14)', async () => {
    const { lines, h: make } = capture('info');
    const h = make();
    const pbx = await h.call({ callId: 'c-2@pbx', called: '+4930123456', calling: '+4989123456' });
    await h.createOk('ses_2');
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: SDP });
    await settle();
    pbx.ack();
    await settle();
    tel.remoteBye();
    await settle();
    const cancelled = await h.call({ callId: 'c-3@pbx' }); // a cancel: still only its summary
    cancelled.cancel();
    await settle();
    await h.createOk('ses_3', 1);
    h.assertClean();
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['call summary', 'call summary']);
    const [answered, gaveUp] = parsed(lines, 'call summary');
    expect(answered).toMatchObject({
      level: 'info',
      callId: 'c-2@pbx',
      sessionId: 'ses_2',
      route: 'translated',
      rule: expect.any(String),
      from: '+4989123456',
      to: '+4930123456',
      source: expect.any(String),
      telnyxUri: expect.stringContaining('sip:'),
      trunkOut: 'default',
      setupMs: expect.any(Number),
      durationMs: expect.any(Number),
      endReason: 'bye_from_telnyx',
      sipStatus: 200,
    });
    expect(gaveUp).toMatchObject({ callId: 'c-3@pbx', endReason: 'caller_cancelled', sipStatus: 487 });
  });
});
