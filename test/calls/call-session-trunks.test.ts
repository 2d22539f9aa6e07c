/**
 * Telnyx trunks in the call flow (CallManager → CallSession over the fake engine): `trunk_out` picks the trunk whose
 * proxy, transport, domain, credentials, number format and tech prefix the INVITEs carry; every INVITE toward a trunk,
 * fallback included, passes its CPS and concurrency limits; one refused there is never sent and the PBX gets 503.
 * Fake timers drive the limits' clock.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../src/logger.ts';
import { parseRules } from '../../src/routing/load.ts';
import { harness, TELNYX_SDP, type Harness } from './call-harness.ts';
import { settle } from './fake-engine.ts';

const GATEWAY_FILE = `telnyx:
  trunks:
    - name: eu
      sipDomain: sip-eu.telnyx.com
      outboundProxy: 192.0.2.50:5070
      sipTransport: tcp
      sipUsername: eu-user
      sipPasswordEnv: TELNYX_TRUNK_EU_PASSWORD
      techPrefix: "4711#"
      numberFormat: { countryCode: 49 }
      maxCallsPerSecond: 2
      maxConcurrent: 1
`;

const RULES = parseRules(
  `rules:
  - name: to-eu
    match: { called: { regex: "^0" } }
    mode: bidirectional_translation
    source_language: en
    target_language: de
    trunk_out: eu
default:
  mode: bidirectional_translation
  source_language: en
  target_language: fr
`,
  'routing.yaml',
  { telnyxTrunks: ['default', 'eu'] },
);

const dirs: string[] = [];
let lines: Array<Record<string, unknown>> = [];

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(5_000_000);
});
afterEach(() => {
  vi.useRealTimers();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
  lines = [];
});

function setup(env: Record<string, string> = {}): Harness {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-call-trunks-'));
  dirs.push(dir);
  const file = path.join(dir, 'gw.yaml');
  fs.writeFileSync(file, GATEWAY_FILE);
  const sink = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return harness(
    {
      GATEWAY_CONFIG: file,
      TELNYX_TRUNK_EU_PASSWORD: 'eu-pw',
      TELNYX_SIP_USERNAME: 'top-user',
      TELNYX_SIP_PASSWORD: 'top-pw',
      TELNYX_OUTBOUND_PROXY: '192.0.2.10:5060',
      ...env,
    },
    RULES,
    createLogger('debug', sink),
  );
}

const NATIONAL = '030 1234567';

describe('Telnyx trunks in the call flow', () => {
  it('trunk_out eu: proxy, transport, domain, credentials, E.164 numbers and tech prefix of that trunk', async () => {
    const h = setup();
    await h.call({ called: NATIONAL, calling: '089 5555555' });
    expect(h.creates[0]?.input.sipUri).toBe('sip:4711%23+49301234567@sip-eu.telnyx.com'); // the direct route
    await h.createOk('ses_eu');
    const inv = h.invite(0).opts;
    expect(inv).toMatchObject({
      uri: 'sip:4711%23ses_eu@sip-eu.telnyx.com',
      proxy: '192.0.2.50:5070',
      transport: 'tcp',
      from: { uri: 'sip:+49895555555@sip-eu.telnyx.com' },
      auth: { username: 'eu-user', password: 'eu-pw' },
    });
    h.invite(0).fail(503, 'Service Unavailable');
    await settle();
    expect(h.invite(1).opts).toMatchObject({
      uri: 'sip:4711%23+49301234567@sip-eu.telnyx.com',
      proxy: '192.0.2.50:5070',
    });
    h.invite(1).fail(486, 'Busy Here');
    await settle();
    expect(lines.filter((l) => l.msg === 'outbound INVITE').map((l) => l.trunk)).toEqual(['eu', 'eu']);
    expect(lines.find((l) => l.msg === 'new call')).toMatchObject({ rule: 'to-eu', trunkOut: 'eu' });
    expect(h.summaries[0]).toMatchObject({ trunkOut: 'eu', sipStatus: 486 });
    h.assertClean();
  });

  it('no trunk_out: the default trunk, the top-level settings, numbers as the PBX sent them', async () => {
    const h = setup();
    await h.call({ called: '+33123456789', calling: '0895555555' });
    await h.createOk('ses_default');
    expect(h.invite(0).opts).toMatchObject({
      uri: 'sip:ses_default@sip.telnyx.com',
      proxy: '192.0.2.10:5060',
      transport: 'udp',
      from: { uri: 'sip:0895555555@sip.telnyx.com' },
      auth: { username: 'top-user', password: 'top-pw' },
    });
    h.invite(0).fail(486, 'Busy Here');
    await settle();
    expect(h.summaries[0]).toMatchObject({ trunkOut: 'default' });
    h.assertClean();
  });

  it('CPS: the fallback INVITE takes a token too; the next call finds none, is never sent and gets 503 at once', async () => {
    const h = setup();
    const first = await h.call({ called: NATIONAL });
    await h.createOk('ses_1');
    h.invite(0).fail(503, 'Service Unavailable'); // translated leg fails: fallback on the same trunk (2nd token)
    await settle();
    expect(h.engine.invites).toHaveLength(2);
    const second = await h.call({ called: NATIONAL });
    await h.createOk('ses_2');
    // Both tokens come back 1100 ms after their use: more than the 1000 ms an INVITE may wait.
    expect(h.engine.invites).toHaveLength(2);
    expect(second.finalResponse).toMatchObject({ status: 503, headers: [['Retry-After', '1']] });
    expect(h.ends.map((e) => e.id)).toContain('ses_2');
    expect(h.summaries.at(-1)).toMatchObject({ endReason: 'trunk_cps_limit', sipStatus: 503, route: 'translated' });
    expect(lines.find((l) => String(l.msg).startsWith('INVITE not sent'))).toMatchObject({
      trunk: 'eu',
      limit: 'cps',
      maxCallsPerSecond: 2,
      level: 'warn',
    });
    h.invite(1).fail(486, 'Busy Here');
    await settle();
    expect(first.finalResponse?.status).toBe(486);

    vi.advanceTimersByTime(1100);
    await h.call({ called: NATIONAL });
    await h.createOk('ses_3');
    expect(h.engine.invites).toHaveLength(3);
    h.invite(2).fail(486, 'Busy Here');
    await settle();
    h.assertClean();
  });

  it('concurrency: an answered call holds the slot until its BYE; a call waiting longer than 1 s gets 503', async () => {
    const h = setup();
    const a = await h.call({ called: NATIONAL });
    await h.createOk('ses_a');
    const tel = h.invite(0).answer({ body: TELNYX_SDP, contentType: 'application/sdp' });
    await settle();
    a.ack();
    await settle();

    const b = await h.call({ called: NATIONAL });
    await h.createOk('ses_b');
    expect(h.engine.invites).toHaveLength(1); // waiting for the slot
    vi.advanceTimersByTime(1000);
    await settle();
    expect(h.engine.invites).toHaveLength(1);
    expect(b.finalResponse).toMatchObject({ status: 503 });
    expect(h.summaries.at(-1)).toMatchObject({ endReason: 'trunk_concurrency_limit' });

    vi.advanceTimersByTime(1100); // CPS tokens back: only concurrency can hold the next one
    const c = await h.call({ called: NATIONAL });
    await h.createOk('ses_c');
    expect(h.engine.invites).toHaveLength(1);
    vi.advanceTimersByTime(300);
    tel.remoteBye(); // call a ends: its slot goes to c, which was waiting
    await settle();
    expect(h.engine.invites).toHaveLength(2);
    expect(lines.find((l) => l.msg === 'INVITE waited for a slot on its Telnyx trunk')).toMatchObject({
      trunk: 'eu',
      waitedMs: 300,
    });
    h.invite(1).fail(486, 'Busy Here');
    await settle();
    expect(c.finalResponse?.status).toBe(486);
    h.assertClean();
  });

  it('concurrency with a fallback: the failed translated leg gives its slot to its own direct leg', async () => {
    const h = setup();
    const call = await h.call({ called: NATIONAL });
    await h.createOk('ses_f');
    h.invite(0).fail(480, 'Temporarily Unavailable');
    await settle();
    expect(h.engine.invites).toHaveLength(2); // sent at once: maxConcurrent 1 counts legs in progress, not calls
    const tel = h.invite(1).answer({ body: TELNYX_SDP, contentType: 'application/sdp' });
    await settle();
    call.ack();
    await settle();
    tel.remoteBye();
    await settle();
    expect(h.summaries[0]).toMatchObject({ route: 'fallback', trunkOut: 'eu' });
    h.assertClean();
  });

  it('a call cancelled while its INVITE waits for a slot: nothing is sent and the slot is not kept', async () => {
    const h = setup();
    const a = await h.call({ called: NATIONAL });
    await h.createOk('ses_a');
    const b = await h.call({ called: NATIONAL });
    await h.createOk('ses_b');
    b.cancel();
    await settle();
    h.invite(0).fail(486, 'Busy Here'); // a's slot frees: b's wait ends, but b is over
    await settle();
    expect(h.engine.invites).toHaveLength(1);
    expect(b.finalResponse?.status).toBe(487);
    expect(a.finalResponse?.status).toBe(486);
    vi.advanceTimersByTime(2000);
    h.assertClean();
  });
});
