import { afterEach, describe, expect, it } from 'vitest';
import { parseXml, startHarness } from './harness.ts';
import type { Harness, HarnessOptions, XmlEl } from './harness.ts';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function start(opts: HarnessOptions = {}): Promise<Harness> {
  h = await startHarness(opts);
  return h;
}

const call = (sid: string, over: Record<string, string> = {}): Record<string, string> => ({
  AccountSid: 'acc-1',
  CallSid: sid,
  From: '+4930111222',
  To: '+4940333444',
  CallStatus: 'ringing',
  Direction: 'inbound',
  ...over,
});

async function voice(hh: Harness, body: Record<string, string>, form = true): Promise<{ res: Response; xml: XmlEl }> {
  const res = await hh.webhook('/webhooks/telnyx/voice', body, { form });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('application/xml');
  return { res, xml: parseXml(await res.text()) };
}

const names = (el: XmlEl): string[] => el.children.map((c) => c.name);

function expectStream(xml: XmlEl, session: { id: string }, hh: Harness): void {
  const connect = xml.children.find((c) => c.name === 'Connect')!;
  expect(names(connect)).toEqual(['Stream']);
  const stream = connect.children[0]!;
  const sandboxSession = hh.sandbox.sessions().find((s) => s.id === session.id)!;
  expect(stream.attrs.url).toBe(`${hh.sandbox.url.replace(/^http/, 'ws')}/sessions/${sandboxSession.id}/connect`);
  expect(stream.attrs.track).toBe('both_tracks');
  expect(stream.children.map((p) => [p.name, p.attrs.name])).toEqual([
    ['Parameter', 'token'],
    ['Parameter', 'session_id'],
  ]);
  expect(stream.children[0]!.attrs.value).toMatch(/^kst_/);
  expect(stream.children[1]!.attrs.value).toBe(session.id);
}

describe('POST /webhooks/telnyx/voice (TeXML)', () => {
  it('creates a Kallglot session and answers with Connect/Stream (form-encoded request)', async () => {
    const hh = await start();
    const { xml } = await voice(hh, call('v3:call-1'));
    expect(xml.name).toBe('Response');
    expect(names(xml)).toEqual(['Connect']);
    const sessions = hh.sandbox.sessions();
    expect(sessions).toHaveLength(1);
    const s = sessions[0]!;
    // The other party Kallglot is told of: the called number, as a tel: URI (no DIRECT_NUMBER here).
    expect(s.routing).toEqual({ phone_number: '+4940333444', sip_uri: 'tel:+4940333444' });
    expect([s.requestStyle, s.sipUri]).toEqual(['routing', 'tel:+4940333444']);
    expect(s.metadata).toMatchObject({ call_sid: 'v3:call-1', from: '+4930111222', to: '+4940333444' });
    expect([s.sourceLanguage, s.targetLanguage]).toEqual(['de', 'en']);
    expectStream(xml, s, hh);
    const row = hh.registry.get('v3:call-1')!;
    expect(row).toMatchObject({
      kind: 'texml',
      session_id: s.id,
      route: 'translated',
      state: 'active',
      from_user: '+4930111222',
      to_user: '+4940333444',
    });
  });

  it('KALLGLOT_REQUEST_STYLE=provider: provider {type telnyx, sip_uri} naming DIRECT_NUMBER, no routing', async () => {
    const hh = await start({ env: { KALLGLOT_REQUEST_STYLE: 'provider', DIRECT_NUMBER: 'sip:agent@pbx.example.com' } });
    const { xml } = await voice(hh, call('v3:call-p'));
    expect(names(xml)).toEqual(['Connect']);
    const [s] = hh.sandbox.sessions();
    expect(s).toMatchObject({ requestStyle: 'provider', sipUri: 'sip:agent@pbx.example.com' });
    expect(s!.provider).toEqual({ type: 'telnyx', sip_uri: 'sip:agent@pbx.example.com' });
    expect(s!.routing).toBeUndefined();
  });

  it('accepts a JSON body and a redelivered Voice URL request reuses the same session (idempotency key)', async () => {
    const hh = await start();
    const first = await voice(hh, call('v3:call-2'), false);
    const second = await voice(hh, call('v3:call-2'), false);
    expect(hh.sandbox.sessions()).toHaveLength(1);
    const id = hh.sandbox.sessions()[0]!.id;
    expectStream(first.xml, { id }, hh);
    expectStream(second.xml, { id }, hh);
  });

  it('speaks the rule greeting (escaped) before connecting, with its language', async () => {
    const rules = `rules:
  - name: greet
    match: { called: "+4940" }
    mode: bidirectional_translation
    source_language: de
    target_language: en
    greeting: { text: "Hallo & willkommen <bitte> \\"warten\\"", language: de-DE }
default:
  mode: bypass
`;
    const hh = await start({ rules });
    const { xml } = await voice(hh, call('v3:call-3'));
    expect(names(xml)).toEqual(['Say', 'Connect']);
    expect(xml.children[0]!.attrs).toEqual({ language: 'de-DE' });
    expect(xml.children[0]!.text).toBe('Hallo & willkommen <bitte> "warten"');
    expect(hh.registry.get('v3:call-3')!.rule).toBe('greet');
  });

  it('routes TeXML calls as direction inbound: outbound-only rules never take them', async () => {
    const rules = `rules:
  - name: from-pbx
    match: { direction: outbound }
    mode: bypass
  - name: from-telnyx
    match: { direction: inbound, called: "+4940" }
    mode: assistive_translation
    source_language: de
    target_language: fr
default:
  mode: bypass
`;
    const hh = await start({ rules });
    const { xml } = await voice(hh, call('v3:call-dir'));
    expect(names(xml)).toEqual(['Connect']);
    expect(hh.registry.get('v3:call-dir')!.rule).toBe('from-telnyx');
    expect(hh.sandbox.sessions()[0]).toMatchObject({ sourceLanguage: 'de', targetLanguage: 'fr' });
  });

  it('records in the background with a status callback when the rule enables recording', async () => {
    const rules = `rules:
  - name: rec
    match: {}
    mode: assistive_translation
    source_language: fr
    target_language: de
    recording: true
    greeting: { text: "Bonjour", language: fr-FR }
default:
  mode: bypass
`;
    const hh = await start({ rules, env: { PUBLIC_BASE_URL: 'https://gw.example.com/' } });
    const { xml } = await voice(hh, call('v3:call-4'));
    expect(names(xml)).toEqual(['Say', 'Start', 'Connect']);
    const startEl = xml.children[1]!;
    expect(names(startEl)).toEqual(['Recording']);
    expect(startEl.children[0]!.attrs).toMatchObject({
      recordingStatusCallback: 'https://gw.example.com/webhooks/telnyx/recording',
      recordingStatusCallbackEvent: 'completed',
      channels: 'dual',
    });
    expect(hh.sandbox.sessions()[0]!.recording).toEqual({ enabled: true, channels: 'dual' });
    expect(hh.sandbox.sessions()[0]!.mode).toBe('assistive_translation');
  });

  it('uses a relative recording callback when PUBLIC_BASE_URL is not set', async () => {
    const hh = await start({
      rules:
        'default:\n  mode: bidirectional_translation\n  source_language: de\n  target_language: en\n  recording: true\n',
    });
    const { xml } = await voice(hh, call('v3:call-5'));
    expect(xml.children[0]!.children[0]!.attrs.recordingStatusCallback).toBe('/webhooks/telnyx/recording');
  });

  it('on a Kallglot failure tells the caller and dials DIRECT_NUMBER', async () => {
    const hh = await start({ env: { DIRECT_NUMBER: '+4940999000' } });
    hh.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    const { xml } = await voice(hh, call('v3:call-6'));
    expect(names(xml)).toEqual(['Say', 'Dial']);
    expect(xml.children[0]!.text).toMatch(/translation is currently unavailable/i);
    expect(xml.children[1]!.text).toBe('+4940999000');
    expect(hh.registry.get('v3:call-6')).toMatchObject({
      route: 'fallback',
      fallback_reason: 'kallglot_internal_error',
      session_id: null,
    });
  });

  it('falls back to dialling the called number when DIRECT_NUMBER is not set', async () => {
    const hh = await start();
    hh.sandbox.injectFailure({ endpoint: 'create', status: 402 });
    const { xml } = await voice(hh, call('v3:call-7'));
    expect(names(xml)).toEqual(['Say', 'Dial']);
    expect(xml.children[1]!.text).toBe('+4940333444');
  });

  it('rejects busy on rate_limit_exceeded with RATE_LIMIT_POLICY=busy', async () => {
    const hh = await start({ env: { RATE_LIMIT_POLICY: 'busy' } });
    hh.sandbox.injectFailure({ endpoint: 'create', status: 429 });
    const { xml } = await voice(hh, call('v3:call-8'));
    expect(names(xml)).toEqual(['Reject']);
    expect(xml.children[0]!.attrs).toEqual({ reason: 'busy' });
    expect(hh.registry.get('v3:call-8')).toMatchObject({
      state: 'ended',
      route: 'rejected',
      fallback_reason: 'kallglot_rate_limit_exceeded',
    });
  });

  it('falls back (not busy) on rate_limit_exceeded with the default policy', async () => {
    const hh = await start({ env: { DIRECT_NUMBER: '+4940999000' } });
    hh.sandbox.injectFailure({ endpoint: 'create', status: 429 });
    const { xml } = await voice(hh, call('v3:call-9'));
    expect(names(xml)).toEqual(['Say', 'Dial']);
  });

  it('bypass rules dial the direct number without creating a session', async () => {
    const rules =
      'rules:\n  - name: emergency\n    match: { called: { regex: "^112$" } }\n    mode: bypass\n' +
      'default:\n  mode: bidirectional_translation\n  source_language: de\n  target_language: en\n';
    const hh = await start({ rules, env: { DIRECT_NUMBER: '+4940999000' } });
    const { xml } = await voice(hh, call('v3:call-10', { To: 'sip:112@example.sip.telnyx.com' }));
    expect(names(xml)).toEqual(['Dial']);
    expect(xml.children[0]!.text).toBe('+4940999000');
    expect(hh.sandbox.stats().createRequests).toBe(0);
    expect(hh.registry.get('v3:call-10')).toMatchObject({ route: 'bypass', rule: 'emergency', session_id: null });
  });

  it('escapes values from the caller in the Dial target', async () => {
    const hh = await start({ rules: 'default:\n  mode: bypass\n' });
    const res = await hh.webhook('/webhooks/telnyx/voice', call('v3:call-11', { To: '+49<x>&"' }));
    const text = await res.text();
    expect(text).toContain('<Dial>+49&lt;x&gt;&amp;"</Dial>');
    expect(parseXml(text).children[0]!.text).toBe('+49<x>&"');
  });

  it('answers 400 without a CallSid and creates nothing', async () => {
    const hh = await start();
    const res = await hh.webhook('/webhooks/telnyx/voice', { From: '+1', To: '+2' });
    expect(res.status).toBe(400);
    expect(hh.sandbox.stats().createRequests).toBe(0);
    expect(hh.registry.recent()).toEqual([]);
  });
});
