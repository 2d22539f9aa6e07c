/**
 * End to end, RFC 3263 toward Telnyx: the real daemon resolves TELNYX_SIP_DOMAIN=kg.test through a real DNS server
 * (dnsmasq, DNS_SERVERS) to SBCs on 127.0.0.2, .3 and .4: SIPp UAS instances, or dead SBCs (a UDP socket of the test
 * that counts what reaches it and never answers). The PBX is SIPp; Kallglot is the sandbox.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { runTargetsCommand } from '../../src/cli/targets.ts';
import { type LogLine, timeMs } from '../helpers/gateway.ts';
import {
  DIRECT_URI,
  deadSbc,
  invitesSeen,
  sbcPorts,
  startDnsRig,
  stopDnsRig,
  TARGET_TIMEOUT_MS,
  TRANSLATED_URI,
  waitUntil,
} from './dns-rig.ts';

const E2E_TIMEOUT_MS = 90_000;

afterEach(stopDnsRig);

const srv = (target: string, port: number, priority: number, weight = 0) => ({
  name: '_sip._udp.kg.test',
  target,
  port,
  priority,
  weight,
});
const HOSTS = { 'sbc1.kg.test': '127.0.0.2', 'sbc2.kg.test': '127.0.0.3', 'sbc3.kg.test': '127.0.0.4' };
/** As Telnyx publishes it: NAPTR names the SRV set, the A record of the domain gives the primary only. */
const NAPTR = [{ name: 'kg.test', order: 10, preference: 10, service: 'SIP+D2U', replacement: '_sip._udp.kg.test' }];

function summaries(lines: LogLine[]): LogLine[] {
  return lines.filter((l) => l.msg === 'call summary');
}

describe('Telnyx SBCs from NAPTR/SRV', () => {
  it('keeps SRV priority and spreads calls by weight (75/25) over the two SBCs of the first priority', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const [p1, p2, p3] = await sbcPorts('127.0.0.2', '127.0.0.3', '127.0.0.4');
    const rig = await startDnsRig({
      hosts: { ...HOSTS, 'kg.test': '127.0.0.2' },
      naptr: NAPTR,
      srv: [srv('sbc1.kg.test', p1!, 10, 75), srv('sbc2.kg.test', p2!, 10, 25), srv('sbc3.kg.test', p3!, 20)],
    });
    const uas = await Promise.all([
      rig.startUas('127.0.0.2', p1!),
      rig.startUas('127.0.0.3', p2!),
      rig.startUas('127.0.0.4', p3!),
    ]);
    const calls = 40;
    const pbx = await rig.runPbx('uac-invite-200-then-bye.xml', { calls, rate: 10, concurrent: 10, timeoutSec: 60 });
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    await waitUntil(() => (summaries(rig.gw.logs).length >= calls ? true : undefined), 15_000, 'every call summary');
    await Promise.all(uas.map((u) => u.stop()));
    const [r1, r2, r3] = await Promise.all(uas.map((u) => u.done));
    const [n1, n2, n3] = [r1, r2, r3].map((r) => invitesSeen(r).length);
    expect(n1! + n2! + n3!, rig.diag(r1, r2, r3)).toBe(calls);
    expect(n3, 'priority 20 is used only when priority 10 fails').toBe(0);
    // Binomial(40, 0.75): fewer than 21 on the heavy SBC, or none on the light one, is a 1-in-10^4 event.
    expect(n1).toBeGreaterThan(n2!);
    expect(n2).toBeGreaterThan(0);
    for (const r of [r1, r2]) for (const m of invitesSeen(r)) expect(m.uri).toMatch(TRANSLATED_URI);
    expect(summaries(rig.gw.logs).every((s) => s.route === 'translated' && s.sipStatus === 200)).toBe(true);
    expect(rig.dns.queries()).toEqual(expect.arrayContaining(['query[NAPTR] kg.test', 'query[SRV] _sip._udp.kg.test']));
  });

  it('fails over to the second SBC while the first is dead: setup takes TELNYX_TARGET_TIMEOUT_MS, then none', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const [p1, p2] = await sbcPorts('127.0.0.2', '127.0.0.3');
    const dead = await deadSbc('127.0.0.2', p1!);
    const rig = await startDnsRig({
      hosts: HOSTS,
      naptr: NAPTR,
      srv: [srv('sbc1.kg.test', p1!, 10), srv('sbc2.kg.test', p2!, 20)],
    });
    const uas = await rig.startUas('127.0.0.3', p2!);
    const first = await rig.runPbx('uac-invite-200-then-bye.xml');
    expect(first.exitCode, rig.diag(first)).toBe(0);
    const [s1] = await waitUntil(() => nonEmpty(summaries(rig.gw.logs)), 10_000, 'the first call summary');
    expect(s1, rig.diag(first)).toMatchObject({ route: 'translated', sipStatus: 200 });
    expect(s1!.setupMs).toBeGreaterThanOrEqual(TARGET_TIMEOUT_MS);
    expect(s1!.setupMs).toBeLessThan(TARGET_TIMEOUT_MS + 2500);
    expect(dead.invites()).toHaveLength(1);
    expect(dead.invites()[0]!.uri).toMatch(TRANSLATED_URI);
    const attempt = rig.gw.logs.find((l) => l.msg === 'SIP target attempt failed');
    expect(attempt).toMatchObject({ target: `udp:127.0.0.2:${p1}`, name: 'sbc1.kg.test', result: 'timeout' });

    // The dead SBC is held down: the next call goes straight to the second one.
    const second = await rig.runPbx('uac-invite-200-then-bye.xml');
    expect(second.exitCode, rig.diag(second)).toBe(0);
    const [, s2] = await waitUntil(
      () => (summaries(rig.gw.logs).length >= 2 ? summaries(rig.gw.logs) : undefined),
      10_000,
      'the second summary',
    );
    expect(s2!.setupMs).toBeLessThan(TARGET_TIMEOUT_MS);
    expect(dead.invites()).toHaveLength(1);
    await uas.stop();
    expect(invitesSeen(await uas.done)).toHaveLength(2);
    const metrics = await rig.getText('/metrics');
    expect(metrics).toContain(
      `kallglot_gateway_sip_target_attempts_total{target="udp:127.0.0.2:${p1}",result="timeout"} 1`,
    );
    expect(metrics).toContain(
      `kallglot_gateway_sip_target_attempts_total{target="udp:127.0.0.3:${p2}",result="answered"} 2`,
    );
    expect(metrics).toContain(`kallglot_gateway_sip_target_up{target="udp:127.0.0.2:${p1}"} 0`);
  });

  it('every SBC dead: the PBX gets a clean 503 in bounded time, and the direct route is never sent to a dead SBC', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const [p1, p2] = await sbcPorts('127.0.0.2', '127.0.0.3');
    const dead = [await deadSbc('127.0.0.2', p1!), await deadSbc('127.0.0.3', p2!)];
    const rig = await startDnsRig({
      hosts: HOSTS,
      naptr: NAPTR,
      srv: [srv('sbc1.kg.test', p1!, 10), srv('sbc2.kg.test', p2!, 20)],
    });
    const pbx = await rig.runPbx('uac-invite-expect-503.xml');
    expect(pbx.exitCode, rig.diag(pbx)).toBe(0);
    const [summary] = await waitUntil(() => nonEmpty(summaries(rig.gw.logs)), 10_000, 'the call summary');
    expect(summary, rig.diag(pbx)).toMatchObject({
      route: 'fallback',
      fallbackReason: 'translated_leg_503',
      telnyxUri: DIRECT_URI,
      endReason: 'direct_leg_503',
      sipStatus: 503,
    });
    // One timeout per SBC on the translated leg, none on the direct route (both held down by then); measured by the
    // daemon's own clock, from its "new call" line to its summary.
    const newCall = rig.gw.logs.find((l) => l.msg === 'new call')!;
    expect(timeMs(summary!) - timeMs(newCall)).toBeLessThan(2 * TARGET_TIMEOUT_MS + 2500);
    for (const sbc of dead) {
      expect(sbc.invites().map((i) => i.uri)).toEqual([expect.stringMatching(TRANSLATED_URI)]);
      expect(sbc.datagrams.some((d) => d.startsWith(`INVITE ${DIRECT_URI} `))).toBe(false);
    }
    expect(rig.gw.logs.find((l) => l.msg === 'every SIP target is down')).toMatchObject({ uri: DIRECT_URI });
    const health = await rig.getJson('/healthz');
    expect(health.telnyxTargets).toEqual([
      expect.objectContaining({ target: `udp:127.0.0.2:${p1}`, up: false, down: 'invite' }),
      expect.objectContaining({ target: `udp:127.0.0.3:${p2}`, up: false, down: 'invite' }),
    ]);
  });
});

describe('OPTIONS probing of the Telnyx SBCs', () => {
  it('takes an SBC that stops answering out of rotation and puts it back when it answers again', {
    timeout: E2E_TIMEOUT_MS,
  }, async () => {
    const [p1, p2] = await sbcPorts('127.0.0.2', '127.0.0.3');
    const rig = await startDnsRig(
      { hosts: HOSTS, naptr: NAPTR, srv: [srv('sbc1.kg.test', p1!, 10), srv('sbc2.kg.test', p2!, 20)] },
      { TELNYX_PROBE_INTERVAL_SEC: '1', TELNYX_PROBE_FAILURES: '2' },
    );
    const sbc1Key = `udp:127.0.0.2:${p1}`;
    const sbc1 = async () => {
      const targets = (await rig.getJson('/healthz')).telnyxTargets as Array<Record<string, unknown>>;
      return targets.find((t) => t.target === sbc1Key);
    };
    let uas1 = await rig.startUas('127.0.0.2', p1!);
    const uas2 = await rig.startUas('127.0.0.3', p2!);
    await waitUntil(
      async () => ((await sbc1())?.lastProbe as { result?: string })?.result === '200' || undefined,
      10_000,
      'an answered probe',
    );

    await uas1.stop();
    await waitUntil(async () => ((await sbc1())?.up === false ? true : undefined), 10_000, 'sbc1 probed down');
    expect(await sbc1()).toMatchObject({ down: 'probe', lastProbe: { result: 'timeout' } });
    expect((await sbc1())?.probeFailures).toBeGreaterThanOrEqual(2);
    expect(await rig.getText('/metrics')).toContain(`kallglot_gateway_sip_target_up{target="${sbc1Key}"} 0`);
    const cli = await targetsCli(rig.gw.httpPort);
    expect(cli.code).toBe(0);
    expect(cli.out).toMatch(
      new RegExp(
        `^${sbc1Key.replace(/\./g, '\\.')}\\s+sbc1\\.kg\\.test\\s+down \\(probe\\)\\s+timeout, \\d+ failed in a row$`,
        'm',
      ),
    );
    expect(cli.out).toMatch(/^2 target\(s\), 1 down$/m);
    // Out of rotation: the call goes to sbc2 at once, without waiting on the dead one.
    const during = await rig.runPbx('uac-invite-200-then-bye.xml');
    expect(during.exitCode, rig.diag(during)).toBe(0);
    const [s1] = await waitUntil(() => nonEmpty(summaries(rig.gw.logs)), 10_000, 'the call summary');
    expect(s1!.setupMs).toBeLessThan(TARGET_TIMEOUT_MS);
    expect(rig.gw.logs.some((l) => l.msg === 'SIP target down' && l.target === sbc1Key)).toBe(true);

    uas1 = await rig.startUas('127.0.0.2', p1!);
    await waitUntil(async () => ((await sbc1())?.up === true ? true : undefined), 10_000, 'sbc1 back up');
    expect(await rig.getText('/metrics')).toContain(`kallglot_gateway_sip_target_up{target="${sbc1Key}"} 1`);
    const after = await rig.runPbx('uac-invite-200-then-bye.xml');
    expect(after.exitCode, rig.diag(after)).toBe(0);
    await waitUntil(() => (summaries(rig.gw.logs).length >= 2 ? true : undefined), 10_000, 'the second summary');
    await Promise.all([uas1.stop(), uas2.stop()]);
    expect(invitesSeen(await uas1.done)).toHaveLength(1);
    expect(invitesSeen(await uas2.done).map((m) => m.uri)).toEqual([expect.stringMatching(TRANSLATED_URI)]);
  });
});

/** `kallglot-gw targets` in-process, finding the daemon from HTTP_HOST/HTTP_PORT as an operator's shell would. */
async function targetsCli(httpPort: number): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await runTargetsCommand({
    argv: [],
    env: { HTTP_HOST: '127.0.0.1', HTTP_PORT: String(httpPort) },
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      out += t;
    },
  });
  return { code, out };
}

function nonEmpty<T>(list: T[]): T[] | undefined {
  return list.length > 0 ? list : undefined;
}
