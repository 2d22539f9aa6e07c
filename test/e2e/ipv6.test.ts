/**
 * IPv6 end to end with real SIPp: one daemon listening dual-stack on `::` (SIP and HTTP), Telnyx (SIPp UAS) on ::1
 * behind TELNYX_OUTBOUND_PROXY=[::1]:port, Kallglot played by the sandbox. An IPv6 PBX (SIPp UAC on ::1, admitted
 * by the default allowlist's ::1/128) makes translated calls over UDP and TCP; an IPv4 PBX on 127.0.0.1 calls the
 * same port. SIP_PUBLIC_ADDRESS gives one address per family, so the gateway's Via and Contact must carry [::1]
 * toward IPv6 peers and 127.0.0.1 toward the IPv4 PBX.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { type GatewayProcess, startGateway } from '../helpers/gateway.ts';
import { freePort } from '../helpers/ports.ts';
import { formatSippResult, runSipp, type SippResult, type SippRun } from '../helpers/sipp.ts';
import { findMessages, headerOf, TRANSLATED_NUMBER, waitFor } from './harness.ts';

interface Rig {
  sandbox: KallglotSandbox;
  gw: GatewayProcess;
  /** Telnyx (SIPp UAS) on ::1. */
  uasPort: number;
  runs: SippRun[];
}

/** Sandbox, Telnyx port on ::1 and the daemon listening on `host`. */
async function startRig(host: string, env: Record<string, string>): Promise<Rig> {
  const sandbox = new KallglotSandbox();
  const { url } = await sandbox.start();
  const uasPort = await freePort('both', '::1');
  try {
    const gw = await startGateway({
      sipPort: await freePort('both', host), // on `::` this checks the port on both families at once
      env: {
        SIP_HOST: host,
        KALLGLOT_API_URL: url,
        KALLGLOT_API_KEY: 'sk_test_x',
        TELNYX_OUTBOUND_PROXY: `[::1]:${uasPort}`,
        ...env,
      },
    });
    return { sandbox, gw, uasPort, runs: [] };
  } catch (err) {
    await sandbox.stop();
    throw err;
  }
}

async function stopRig(rig: Rig | undefined): Promise<void> {
  if (!rig) return;
  await Promise.all(rig.runs.splice(0).map((r) => r.stop()));
  await rig.gw.stop();
  await rig.sandbox.stop();
}

function diag(rig: Rig, ...results: SippResult[]): string {
  return [
    ...results.map((r) => formatSippResult(r, 6000)),
    `--- sandbox sessions\n${JSON.stringify(rig.sandbox.sessions(), null, 1).slice(0, 3000)}`,
    `--- gateway stderr\n${rig.gw.stderr().slice(-2000)}`,
    `--- last gateway logs\n${rig.gw.logs
      .slice(-25)
      .map((l) => JSON.stringify(l))
      .join('\n')}`,
  ].join('\n');
}

interface CallRun {
  uac: SippResult;
  uas: SippResult;
}

/** One translated call: the PBX at `pbxIp` hangs up; Telnyx answers on ::1. */
async function call(rig: Rig, pbxIp: '::1' | '127.0.0.1', transport: 'udp' | 'tcp'): Promise<CallRun> {
  const uas = runSipp({
    scenario: 'uas-answer-200-expect-bye.xml',
    localIp: '::1',
    localPort: rig.uasPort,
    calls: 1,
    timeoutSec: 15,
  });
  rig.runs.push(uas);
  await uas.ready;
  const remoteHost = pbxIp === '::1' ? '[::1]' : '127.0.0.1';
  const uac = runSipp({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `${remoteHost}:${rig.gw.sipPort}`,
    localIp: pbxIp,
    localPort: await freePort('both', pbxIp),
    transport,
    service: TRANSLATED_NUMBER,
    calls: 1,
    durationMs: 200,
    timeoutSec: 15,
  });
  rig.runs.push(uac);
  const uacResult = await uac.done;
  if (uacResult.exitCode !== 0) setTimeout(() => void uas.stop(), 1000);
  return { uac: uacResult, uas: await uas.done };
}

/** The call went through: PBX got its 200, one session created and ended once, the BYE reached Telnyx. */
async function expectTranslated(rig: Rig, r: CallRun): Promise<{ sessionId: string }> {
  const d = () => diag(rig, r.uac, r.uas);
  expect(r.uac.exitCode, d()).toBe(0);
  expect(r.uas.exitCode, d()).toBe(0);
  expect(findMessages(r.uac.messages, 'received', 'SIP/2.0 200', 'INVITE').length, d()).toBeGreaterThan(0);
  const invites = findMessages(r.uas.messages, 'received', 'INVITE ');
  expect(invites, d()).toHaveLength(1);
  const sessionId = /^INVITE sip:(sess_[^@]+)@sip\.telnyx\.com SIP\/2\.0$/.exec(invites[0]!.startLine)?.[1];
  expect(sessionId, d()).toBeDefined();
  const session = await waitFor(
    () => rig.sandbox.sessions().find((s) => s.id === sessionId && s.endCalls > 0),
    10_000,
    d,
  );
  expect(session.endReason, d()).toBe('agent_hangup');
  expect(findMessages(r.uas.messages, 'received', 'BYE ')).toHaveLength(1);
  // An end retried late would bump endCalls after the first look; give it a moment to show up.
  await new Promise((res) => setTimeout(res, 300));
  expect(rig.sandbox.sessions().find((s) => s.id === sessionId)?.endCalls, d()).toBe(1);
  return { sessionId: sessionId! };
}

/** A Via of ours: `transport`, sent-by `host:port`, a fresh branch, rport asked for. */
function ourVia(transport: string, host: string, port: number): RegExp {
  const h = host.replace(/[[\]]/g, '\\$&');
  return new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} ${h}:${port};branch=z9hG4bK\\w+;rport$`);
}

describe('IPv6: a dual-stack gateway on ::', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig('::', { SIP_PUBLIC_ADDRESS: '127.0.0.1,::1', HTTP_HOST: '::' });
  }, 30_000);
  afterAll(() => stopRig(rig));

  it.each(['udp', 'tcp'] as const)(
    'IPv6 PBX on ::1 over %s: translated call with bracketed IPv6 Via and Contact both ways',
    async (transport) => {
      const { gw } = rig;
      const created = rig.sandbox.stats().created;
      const r = await call(rig, '::1', transport);
      const d = () => diag(rig, r.uac, r.uas);
      const { sessionId } = await expectTranslated(rig, r);
      expect(rig.sandbox.stats().created, d()).toBe(created + 1);

      const answer = findMessages(r.uac.messages, 'received', 'SIP/2.0 200', 'INVITE')[0]!;
      const tpParam = transport === 'tcp' ? ';transport=tcp' : '';
      expect(headerOf(answer.text, 'Contact'), d()).toBe(`<sip:gw@[::1]:${gw.sipPort}${tpParam}>`);
      // The PBX's own Via comes back as it was sent: sent-by [::1]:port, which the IPv6 source matched.
      expect(headerOf(answer.text, 'Via'), d()).toMatch(
        new RegExp(`^SIP/2\\.0/${transport.toUpperCase()} \\[::1\\]:\\d+;branch=`),
      );

      // Toward Telnyx on ::1: the INVITE and the relayed BYE carry our bracketed IPv6 address.
      const invite = findMessages(r.uas.messages, 'received', 'INVITE ')[0]!;
      expect(headerOf(invite.text, 'Via'), d()).toMatch(ourVia('udp', '[::1]', gw.sipPort));
      expect(headerOf(invite.text, 'Contact'), d()).toBe(`<sip:gw@[::1]:${gw.sipPort}>`);
      const bye = findMessages(r.uas.messages, 'received', 'BYE ')[0]!;
      expect(headerOf(bye.text, 'Via'), d()).toMatch(ourVia('udp', '[::1]', gw.sipPort));

      const summary = await waitFor(() => rig.gw.summaries().find((l) => l.sessionId === sessionId), 5000, d);
      expect(summary, d()).toMatchObject({ route: 'translated', endReason: 'bye_from_pbx', sipStatus: 200 });
    },
    60_000,
  );

  it('IPv4 PBX on 127.0.0.1, same port: translated call, IPv4 Contact toward the PBX, [::1] toward Telnyx', async () => {
    const { gw } = rig;
    const r = await call(rig, '127.0.0.1', 'udp');
    const d = () => diag(rig, r.uac, r.uas);
    await expectTranslated(rig, r);
    const answer = findMessages(r.uac.messages, 'received', 'SIP/2.0 200', 'INVITE')[0]!;
    expect(headerOf(answer.text, 'Contact'), d()).toBe(`<sip:gw@127.0.0.1:${gw.sipPort}>`);
    const invite = findMessages(r.uas.messages, 'received', 'INVITE ')[0]!;
    expect(headerOf(invite.text, 'Via'), d()).toMatch(ourVia('udp', '[::1]', gw.sipPort));
    expect(headerOf(invite.text, 'Contact'), d()).toBe(`<sip:gw@[::1]:${gw.sipPort}>`);
  }, 60_000);

  it('serves HTTP on :: to IPv4 and IPv6 clients, and logs the listen addresses bracketed', async () => {
    const { gw } = rig;
    for (const host of ['127.0.0.1', '[::1]']) {
      const res = await fetch(`http://${host}:${gw.httpPort}/healthz`);
      expect(res.status, host).toBe(200);
    }
    const started = gw.logs.find((l) => l.msg === 'kallglot-sip-gateway started');
    expect(started).toMatchObject({ sip: `[::]:${gw.sipPort} (udp,tcp)`, http: `[::]:${gw.httpPort}` });
  });
});

describe('IPv6 only: a gateway on ::1', () => {
  let rig: Rig;
  beforeAll(async () => {
    // No SIP_PUBLIC_ADDRESS: the address written in Via/Contact is derived from SIP_HOST.
    rig = await startRig('::1', { SIP_PUBLIC_ADDRESS: '' });
  }, 30_000);
  afterAll(() => stopRig(rig));

  it('IPv6 PBX over UDP: translated call, [::1] in Via and Contact', async () => {
    const { gw } = rig;
    const r = await call(rig, '::1', 'udp');
    const d = () => diag(rig, r.uac, r.uas);
    await expectTranslated(rig, r);
    const answer = findMessages(r.uac.messages, 'received', 'SIP/2.0 200', 'INVITE')[0]!;
    expect(headerOf(answer.text, 'Contact'), d()).toBe(`<sip:gw@[::1]:${gw.sipPort}>`);
    const invite = findMessages(r.uas.messages, 'received', 'INVITE ')[0]!;
    expect(headerOf(invite.text, 'Via'), d()).toMatch(ourVia('udp', '[::1]', gw.sipPort));
  }, 60_000);
});
