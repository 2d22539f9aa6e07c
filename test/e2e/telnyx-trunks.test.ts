/**
 * End to end with real SIPp and the real daemon: two Telnyx trunks in the gateway config file (GATEWAY_CONFIG), each
 * a SIPp UAS reached through its own outbound proxy (one over UDP, one over TCP), and routing rules whose `trunk_out`
 * picks one. Each call's INVITEs reach its trunk's UAS only, with that trunk's domain, tech prefix and number format.
 * Then the CPS limit: a trunk with maxCallsPerSecond 2 and a burst of 5 calls: the UAS never sees more than 2 INVITEs
 * in any second, and a call that cannot get a slot within the bounded wait is refused with 503 by the gateway
 * without any INVITE reaching the UAS.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { timeMs } from '../helpers/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import type { SippResult } from '../helpers/sipp.ts';
import { findMessages, headerOf, startE2e, waitFor, type E2eEnv } from './harness.ts';

const ROUTING = `rules:
  - name: germany
    match: { called: { regex: "^0" } }
    mode: bidirectional_translation
    source_language: en
    target_language: de
    trunk_out: eu
  - name: north-america
    match: { called: { regex: "^1" } }
    mode: bidirectional_translation
    source_language: en
    target_language: es
    trunk_out: us
  - name: burst
    match: { called: { regex: "^\\\\+44" } }
    mode: bidirectional_translation
    source_language: en
    target_language: fr
    trunk_out: slow
default:
  mode: bypass
`;

function gatewayFile(ports: { eu: number; us: number; slow: number }): string {
  return `telnyx:
  trunks:
    - name: eu
      sipDomain: sip-eu.telnyx.com
      outboundProxy: 127.0.0.1:${ports.eu}
      techPrefix: "4711"
      numberFormat: { countryCode: 49, nationalPrefix: "0" }
    - name: us
      sipDomain: sip-us.telnyx.com
      outboundProxy: 127.0.0.1:${ports.us}
      sipTransport: tcp
      techPrefix: "99#"
      numberFormat: { countryCode: 1, nationalPrefix: "1", internationalPrefix: "011" }
    - name: slow
      sipDomain: sip.telnyx.com
      outboundProxy: 127.0.0.1:${ports.slow}
      maxCallsPerSecond: 2
`;
}

let env: E2eEnv | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await env?.teardown();
  env = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function start(): Promise<{ e: E2eEnv; ports: { eu: number; us: number; slow: number } }> {
  const ports = { eu: await freePort('both'), us: await freePort('both'), slow: await freePort('both') };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-e2e-telnyx-trunks-'));
  dirs.push(dir);
  fs.writeFileSync(path.join(dir, 'routing.yaml'), ROUTING);
  fs.writeFileSync(path.join(dir, 'gateway.yaml'), gatewayFile(ports));
  env = await startE2e({
    ROUTING_FILE: path.join(dir, 'routing.yaml'),
    GATEWAY_CONFIG: path.join(dir, 'gateway.yaml'),
  });
  return { e: env, ports };
}

/**
 * The INVITEs a SIPp UAS received, each with the time SIPp logged it (ms since the epoch, local clock); a UDP
 * retransmission (same Call-ID) counts once, at its first arrival.
 */
function timedInvites(log: string | undefined): Array<{ at: number; callId: string }> {
  const out: Array<{ at: number; callId: string }> = [];
  const parts = (log ?? '').split(/^-{20,} (\d{4}-\d\d-\d\d\s+\d\d:\d\d:\d\d\.\d+)$/m);
  for (let i = 1; i + 1 < parts.length; i += 2) {
    const block = /^\s*\w+ message received[^\n]*\n\n(INVITE [\s\S]*)$/.exec(parts[i + 1] as string)?.[1];
    const callId = block && headerOf(block, 'Call-ID');
    if (!callId || out.some((m) => m.callId === callId)) continue;
    const [date, time] = (parts[i] as string).split(/\s+/);
    const [hms, frac = '0'] = (time as string).split('.');
    out.push({ at: Date.parse(`${date}T${hms}`) + Number(`0.${frac}`) * 1000, callId });
  }
  return out;
}

describe('Telnyx trunks picked by routing rules', () => {
  it('two trunks: each call reaches its own trunk, with its domain, transport, tech prefix and number format', async () => {
    const { e, ports } = await start();
    const eu = e.sipp({ scenario: 'uas-translated-503-direct-200.xml', localPort: ports.eu, calls: 2, timeoutSec: 20 });
    const us = e.sipp({
      scenario: 'uas-translated-503-direct-200.xml',
      localPort: ports.us,
      transport: 'tcp',
      calls: 2,
      timeoutSec: 20,
    });
    await Promise.all([eu.ready, us.ready]);
    const call = (service: string, fromUser: string) =>
      e.sipp({
        scenario: 'uac-invite-200-then-bye.xml',
        remote: `127.0.0.1:${e.gw.sipPort}`,
        localPort: e.uacPort,
        service,
        vars: { from_user: fromUser },
        calls: 1,
        durationMs: 200,
        timeoutSec: 15,
      }).done;
    const pbxEu = await call('0301234567', '0895555555');
    const pbxUs = await call('12125551234', '13125550000');
    const [euRes, usRes] = await Promise.all([eu.done, us.done]);
    const d = () => e.diag(pbxEu, pbxUs, euRes, usRes);
    for (const r of [pbxEu, pbxUs, euRes, usRes]) expect(r.exitCode, d()).toBe(0);

    const sessions = e.sandbox.sessions();
    const euSession = sessions.find((s) => s.metadata?.rule === 'germany');
    const usSession = sessions.find((s) => s.metadata?.rule === 'north-america');
    expect(euSession && usSession, d()).toBeTruthy();
    const invites = (r: SippResult) => findMessages(r.messages, 'received', 'INVITE ');
    // eu: UDP, its domain, tech prefix 4711, national numbers as +49; the fallback INVITE on the same trunk.
    expect(
      invites(euRes).map((m) => m.startLine),
      d(),
    ).toEqual([
      `INVITE sip:4711${euSession!.id}@sip-eu.telnyx.com SIP/2.0`,
      'INVITE sip:4711+49301234567@sip-eu.telnyx.com SIP/2.0',
    ]);
    for (const m of invites(euRes)) {
      expect(headerOf(m.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/UDP /);
      expect(headerOf(m.text, 'From'), d()).toMatch(/<sip:\+49895555555@sip-eu\.telnyx\.com>/);
    }
    // us: TCP, its domain, tech prefix 99# (escaped in the URI), 1-prefixed numbers as +1.
    expect(
      invites(usRes).map((m) => m.startLine),
      d(),
    ).toEqual([
      `INVITE sip:99%23${usSession!.id}@sip-us.telnyx.com SIP/2.0`,
      'INVITE sip:99%23+12125551234@sip-us.telnyx.com SIP/2.0',
    ]);
    for (const m of invites(usRes)) {
      expect(headerOf(m.text, 'Via'), d()).toMatch(/^SIP\/2\.0\/TCP /);
      expect(headerOf(m.text, 'From'), d()).toMatch(/<sip:\+13125550000@sip-us\.telnyx\.com>/);
    }
    // Kallglot is told the other party as the trunk's direct route would dial it.
    expect(euSession!.sipUri, d()).toBe('sip:4711+49301234567@sip-eu.telnyx.com');
    expect(usSession!.sipUri, d()).toBe('sip:99%23+12125551234@sip-us.telnyx.com');
    const summaries = await waitFor(() => e.gw.summaries().length === 2 && e.gw.summaries(), 5000, d);
    expect(
      summaries.map((s) => [s.rule, s.trunkOut, s.route]),
      d(),
    ).toEqual([
      ['germany', 'eu', 'fallback'],
      ['north-america', 'us', 'fallback'],
    ]);
    const sent = e.gw.logs.filter((l) => l.msg === 'outbound INVITE').map((l) => l.trunk);
    expect(sent, d()).toEqual(['eu', 'eu', 'us', 'us']);
  }, 90_000);

  it('CPS 2 and a burst of 5 calls: never 3 INVITEs in a second; the calls that cannot wait get 503, unsent', async () => {
    const { e, ports } = await start();
    const uas = e.sipp({ scenario: 'uas-answer-200-expect-bye.xml', localPort: ports.slow, timeoutSec: 20 });
    await uas.ready;
    const pbx = await e.sipp({
      scenario: 'uac-invite-200-or-503.xml',
      remote: `127.0.0.1:${e.gw.sipPort}`,
      localPort: e.uacPort,
      service: '+442079460000',
      calls: 5,
      rate: 10, // one call every 100 ms: five within half a second
      concurrent: 5,
      durationMs: 500,
      timeoutSec: 20,
    }).done;
    const d = () => e.diag(pbx, undefined);
    expect(pbx.exitCode, d()).toBe(0);
    const answered = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE');
    const refused = findMessages(pbx.messages, 'received', 'SIP/2.0 503', 'INVITE');
    const answeredCalls = new Set(answered.map((m) => headerOf(m.text, 'Call-ID')));
    const refusedCalls = new Set(refused.map((m) => headerOf(m.text, 'Call-ID')));
    expect(answeredCalls.size + refusedCalls.size, d()).toBe(5);
    // Two go at once; two more wait about a second for the tokens of the first two; the fifth could not have a
    // token within the 1 s wait (the earliest would come back 2 s after the first INVITE): refused at once.
    expect(answeredCalls.size, d()).toBeGreaterThanOrEqual(2);
    expect(refusedCalls.size, d()).toBeGreaterThanOrEqual(1);
    for (const m of refused) expect(headerOf(m.text, 'Retry-After'), d()).toBe('1');

    await waitFor(() => e.gw.summaries().length === 5, 10_000, d);
    await uas.stop();
    const telnyx = await uas.done;
    const dd = () => e.diag(pbx, telnyx);
    // The gateway's sends (logged as each INVITE is handed to the SIP engine): no 1000 ms window holds 3 of them.
    const sends = e.gw.logs.filter((l) => l.msg === 'outbound INVITE' && l.trunk === 'slow').map(timeMs);
    expect(sends.length, dd()).toBe(answeredCalls.size);
    for (let i = 2; i < sends.length; i++) {
      const apart = sends[i]! - sends[i - 2]!;
      expect(apart, `sends ${i - 2} and ${i} only ${apart} ms apart\n${dd()}`).toBeGreaterThanOrEqual(1000);
    }
    // What Telnyx (the UAS) saw: only the calls that got a slot, each once, never 3 in a second, although arrival
    // trails the send by the engine's own latency (tens of ms on a busy machine, most for the first INVITE): the
    // limiter's 100 ms margin covers that and network jitter.
    const invites = timedInvites(telnyx.messages);
    expect(invites.length, dd()).toBe(answeredCalls.size);
    for (let i = 2; i < invites.length; i++) {
      const apart = invites[i]!.at - invites[i - 2]!.at;
      expect(apart, `INVITEs ${i - 2} and ${i} only ${apart} ms apart\n${dd()}`).toBeGreaterThanOrEqual(1000);
    }
    const notSent = e.gw.logs.filter((l) => String(l.msg).startsWith('INVITE not sent'));
    expect(notSent.length, dd()).toBe(refusedCalls.size);
    expect(notSent[0], dd()).toMatchObject({ level: 'warn', trunk: 'slow', limit: 'cps', maxCallsPerSecond: 2 });
    const limited = e.gw.summaries().filter((s) => s.endReason === 'trunk_cps_limit');
    expect(limited.length, dd()).toBe(refusedCalls.size);
    for (const s of limited) expect(s, dd()).toMatchObject({ sipStatus: 503, trunkOut: 'slow' });
    // The Kallglot session of every refused call was ended: none is left open.
    await waitFor(() => e.sandbox.stats().ended === 5, 10_000, dd);
    const metrics = await (await fetch(`http://127.0.0.1:${e.gw.httpPort}/metrics`)).text();
    expect(metrics, dd()).toContain(`kallglot_gateway_trunk_invites_total{trunk="slow"} ${answeredCalls.size}`);
    expect(metrics, dd()).toContain(
      `kallglot_gateway_trunk_limit_refusals_total{trunk="slow",limit="cps"} ${refusedCalls.size}`,
    );
  }, 90_000);
});
