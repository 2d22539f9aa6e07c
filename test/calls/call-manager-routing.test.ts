/**
 * What the call logic does with the routing file's trunks and dial codes: CallManager names the INVITE's trunk and
 * routes with it (direction outbound), and the stripped number is the one every later step uses: the session's
 * metadata, the direct route's URI, the registry row and the 'new call' line.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/calls/admission.ts';
import { CallManager } from '../../src/calls/call-manager.ts';
import type { CallRecorder } from '../../src/calls/types.ts';
import { loadConfig } from '../../src/config/load.ts';
import { createLogger } from '../../src/logger.ts';
import { parseRules } from '../../src/routing/load.ts';
import { SessionEnder } from '../../src/sessions/ender.ts';
import { harness } from './call-harness.ts';
import { FakeEngine, settle } from './fake-engine.ts';

const RULES = parseRules(
  `trunks:
  - name: by-tgrp
    tgrp: TG-9
  - name: loopback
    source: 127.0.0.0/8
rules:
  - name: emergency
    match: { called: { regex: "^112$" } }
    mode: bypass
  - name: dial-bypass
    dial_code: "*0*"
    match: {}
    mode: bypass
  - name: dial-german
    dial_code: "*49*"
    match: { direction: outbound }
    mode: bidirectional_translation
    source_language: en
    target_language: de
  - name: tg9
    match: { trunk: by-tgrp }
    mode: assistive_translation
    source_language: fr
    target_language: de
  - name: inbound-only
    match: { direction: inbound }
    mode: bypass
default:
  mode: bidirectional_translation
  source_language: de
  target_language: en
`,
  'routing.yaml',
);

function logSink(): { lines: Array<Record<string, unknown>>; sink: Writable } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { lines, sink };
}

describe('CallManager: trunks, dial codes and direction', () => {
  it('strips the dial code for the session (languages, to, trunk metadata) and logs the trunk', async () => {
    const { lines, sink } = logSink();
    const h = harness({}, RULES, createLogger('debug', sink)); // 'new call' is a debug line
    const pbx = await h.call({ called: '*49*+4930123456' });
    expect(h.creates).toHaveLength(1);
    const input = h.creates[0]!.input;
    expect(input).toMatchObject({ mode: 'bidirectional_translation', sourceLanguage: 'en', targetLanguage: 'de' });
    expect(input.metadata).toMatchObject({ rule: 'dial-german', to: '+4930123456', trunk: 'loopback' });
    expect(lines.find((l) => l.msg === 'new call')).toMatchObject({
      to: '+4930123456',
      dialled: '*49*+4930123456',
      dialCode: '*49*',
      trunk: 'loopback',
      rule: 'dial-german',
      mode: 'bidirectional_translation',
    });
    await h.createOk('ses_1');
    h.invite(0).fail(486, 'Busy Here');
    await settle();
    expect(pbx.finalResponse?.status).toBe(486);
    h.assertClean();
  });

  it('dials the direct route with the stripped number', async () => {
    const h = harness({}, RULES, pino({ level: 'silent' }));
    const pbx = await h.call({ called: '*0*+4930999' });
    expect(h.creates).toHaveLength(0);
    expect(h.invite(0).opts.uri).toBe('sip:+4930999@sip.telnyx.com');
    h.invite(0).fail(404, 'Not Found');
    await settle();
    expect(pbx.finalResponse?.status).toBe(404);
    h.assertClean();
  });

  it('names the trunk by a tgrp on Contact (the first trunk listed), and never takes inbound-only rules', async () => {
    const { lines, sink } = logSink();
    const h = harness({}, RULES, createLogger('debug', sink)); // 'new call' is a debug line
    const headers: Array<[string, string]> = [['Contact', '<sip:pbx;tgrp=TG-9;trunk-context=pbx.test@127.0.0.1>']];
    await h.call({ called: '+331', headers });
    expect(h.creates[0]!.input).toMatchObject({ mode: 'assistive_translation', sourceLanguage: 'fr' });
    expect(h.creates[0]!.input.metadata).toMatchObject({ rule: 'tg9', trunk: 'by-tgrp', to: '+331' });
    expect(lines.find((l) => l.msg === 'new call')).toMatchObject({ trunk: 'by-tgrp', to: '+331' });
    expect(lines.find((l) => l.msg === 'new call')?.dialCode).toBeUndefined();
    await h.createFails(new Error('down'));
    h.invite(0).fail(486);
    await settle();
    h.assertClean();
  });

  it('records the stripped number in the registry row', async () => {
    const rows: Array<Parameters<CallRecorder['callStarted']>[0]> = [];
    const recorder: CallRecorder = {
      callStarted: (c) => rows.push(c) > 0,
      update: () => {},
      callEnded: () => true,
    };
    const config = loadConfig({ env: { LOG_LEVEL: 'silent', SIP_PUBLIC_ADDRESS: '127.0.0.1' } });
    const logger = pino({ level: 'silent' });
    const engine = new FakeEngine();
    const admission = new Admission({
      allowedSources: config.calls.allowedSources,
      maxConcurrent: config.calls.maxConcurrent,
      maxCallsPerSecond: config.calls.maxCallsPerSecond,
    });
    new CallManager({
      config,
      logger,
      engine,
      admission,
      recorder,
      rules: () => RULES,
      sessionEnder: new SessionEnder({ endSession: async () => {} }, logger),
      kallglot: { createSession: () => new Promise(() => {}) },
    });
    engine.incoming({ called: '*0*112' });
    await settle();
    // `*0*` is stripped before any rule is tried: the emergency bypass (first) takes the call, to 112.
    expect(rows).toEqual([expect.objectContaining({ to: '112', rule: 'emergency', pbxSource: '127.0.0.1' })]);
    expect(engine.invites[0]?.opts.uri).toBe('sip:112@sip.telnyx.com');
    engine.invites[0]?.fail(503);
    await settle();
  });
});
