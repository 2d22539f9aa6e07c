/**
 * Through a real record-routing proxy (Kamailio, Debian package `kamailio`, started by the test): the PBX reaches the
 * gateway through it and the gateway reaches Telnyx through it (TELNYX_OUTBOUND_PROXY), as behind a customer's SBC or
 * Telnyx's own proxies. RFC 3261 §12.1.1: the gateway's dialog-creating responses copy the Record-Route set, so the
 * PBX's ACK, re-INVITEs and BYE find their way back through the proxy; the gateway's own in-dialog requests (ACK and
 * BYE toward Telnyx, BYE toward the PBX) follow the route sets it learned. Before this, every such call ended
 * `pbx_no_ack` (408) and BYEs got 404 from the proxy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { startGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { kamailioAvailable, startKamailio, type KamailioProxy } from '../helpers/kamailio.ts';
import { freePort } from '../helpers/ports.ts';
import { formatSippResult, runSipp, type SippResult, type SippRun } from '../helpers/sipp.ts';
import { TRANSLATED_NUMBER, findMessages, headerOf, waitFor } from './harness.ts';

interface Rig {
  sandbox: KallglotSandbox;
  gw: GatewayProcess;
  proxy: KamailioProxy;
  uasPort: number;
  runs: SippRun[];
  diag(...r: Array<SippResult | undefined>): string;
}

let rig: Rig | undefined;
afterEach(async () => {
  if (!rig) return;
  await Promise.all(rig.runs.map((r) => r.stop()));
  await rig.gw.stop();
  await rig.proxy.stop();
  await rig.sandbox.stop();
  rig = undefined;
});

async function startRig(): Promise<Rig> {
  if (!kamailioAvailable()) throw new Error('kamailio is not installed: apt-get install -y kamailio (CI installs it)');
  const sandbox = new KallglotSandbox();
  const { url } = await sandbox.start();
  const [proxyPort, sipPort, uasPort] = [await freePort('both'), await freePort('both'), await freePort('both')];
  const proxy = await startKamailio({ port: proxyPort, gatewayPort: sipPort, telnyxPort: uasPort });
  const gw = await startGateway({
    sipPort,
    env: { KALLGLOT_API_URL: url, KALLGLOT_API_KEY: 'sk_test_x', TELNYX_OUTBOUND_PROXY: `127.0.0.1:${proxyPort}` },
  });
  const r: Rig = {
    sandbox,
    gw,
    proxy,
    uasPort,
    runs: [],
    diag: (...results) =>
      [
        ...results.filter((x): x is SippResult => x !== undefined).map((x) => formatSippResult(x, 5000)),
        `--- kamailio\n${proxy.log().slice(-3000)}`,
        `--- gateway logs\n${gw.logs
          .slice(-25)
          .map((l) => JSON.stringify(l))
          .join('\n')}`,
      ].join('\n'),
  };
  return r;
}

async function call(r: Rig, uac: string, uas: string, extra: { durationMs?: number } = {}) {
  const uasRun = runSipp({ scenario: uas, localPort: r.uasPort, calls: 1, timeoutSec: 20 });
  r.runs.push(uasRun);
  await uasRun.ready;
  const uacRun = runSipp({
    scenario: uac,
    remote: `127.0.0.1:${r.proxy.port}`,
    localPort: await freePort('both'),
    service: TRANSLATED_NUMBER,
    calls: 1,
    timeoutSec: 20,
    durationMs: extra.durationMs ?? 200,
  });
  r.runs.push(uacRun);
  const pbx = await uacRun.done;
  if (pbx.exitCode !== 0) setTimeout(() => void uasRun.stop(), 1000);
  const telnyx = await uasRun.done;
  return { pbx, telnyx, d: () => r.diag(pbx, telnyx) };
}

/** Kamailio's log lines for requests of `method` it routed. */
const routed = (r: Rig, method: string): number =>
  r.proxy
    .log()
    .split('\n')
    .filter((l) => l.includes(`REQ ${method} `)).length;

describe('calls through a record-routing Kamailio in front of the gateway and of Telnyx', () => {
  it('translated call, PBX hangs up: ACK and BYE cross the proxy both ways, session ended once', {
    timeout: 60_000,
  }, async () => {
    const r = (rig = await startRig());
    const { pbx, telnyx, d } = await call(r, 'uac-invite-200-then-bye.xml', 'uas-answer-200-expect-bye.xml');
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const ok = findMessages(pbx.messages, 'received', 'SIP/2.0 200', 'INVITE')[0];
    expect(headerOf(ok?.text ?? '', 'Record-Route'), d()).toMatch(
      new RegExp(`<sip:127\\.0\\.0\\.1:${r.proxy.port};lr`),
    );
    const session = await waitFor(() => r.sandbox.sessions()[0]?.endCalls === 1 && r.sandbox.sessions()[0], 10_000, d);
    expect(session, d()).toMatchObject({ endReason: 'agent_hangup', endCalls: 1 });
    // PBX's ACK + BYE, gateway's ACK + BYE toward Telnyx: all four in-dialog requests went through the proxy.
    expect(routed(r, 'ACK'), d()).toBeGreaterThanOrEqual(2);
    expect(routed(r, 'BYE'), d()).toBe(2);
    const summary = await r.gw.waitForLog((l) => l.msg === 'call summary');
    expect(summary, d()).toMatchObject({ route: 'translated', endReason: 'bye_from_pbx' });
  });

  it('translated call, Telnyx hangs up: its BYE reaches the PBX through the proxy', { timeout: 60_000 }, async () => {
    const r = (rig = await startRig());
    const { pbx, telnyx, d } = await call(r, 'uac-invite-200-expect-bye.xml', 'uas-answer-200-then-bye.xml');
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    const bye = findMessages(pbx.messages, 'received', 'BYE ')[0];
    expect(bye, d()).toBeDefined();
    expect(routed(r, 'BYE'), d()).toBe(2);
    await waitFor(() => r.sandbox.sessions()[0]?.endCalls === 1, 10_000, d);
    expect(r.sandbox.sessions()[0], d()).toMatchObject({ endReason: 'customer_hangup' });
    expect(await r.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      endReason: 'bye_from_telnyx',
    });
  });

  it('re-INVITEs (hold, resume) and INFO from the PBX cross the proxy and the gateway', {
    timeout: 60_000,
  }, async () => {
    const r = (rig = await startRig());
    const { pbx, telnyx, d } = await call(r, 'uac-reinvite-hold-resume.xml', 'uas-answer-reinvites.xml', {
      durationMs: 100,
    });
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    expect(routed(r, 'INFO'), d()).toBe(2);
    expect(routed(r, 'INVITE'), d()).toBe(6); // 3 from the PBX, 3 relayed toward Telnyx
    await waitFor(() => r.sandbox.stats().ended === 1, 10_000, d);
  });

  it('CANCEL while ringing crosses the proxy: 487 to the PBX, the Telnyx leg cancelled, session ended', {
    timeout: 60_000,
  }, async () => {
    const r = (rig = await startRig());
    const { pbx, telnyx, d } = await call(r, 'uac-ring-cancel-expect-487.xml', 'uas-ring-expect-cancel-487.xml');
    expect(pbx.exitCode, d()).toBe(0);
    expect(telnyx.exitCode, d()).toBe(0);
    expect(routed(r, 'CANCEL'), d()).toBe(2);
    await waitFor(() => r.sandbox.sessions()[0]?.endCalls === 1, 10_000, d);
    expect(await r.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      endReason: 'caller_cancelled',
      sipStatus: 487,
    });
  });
});
