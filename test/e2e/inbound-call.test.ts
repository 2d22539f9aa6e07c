/**
 * Inbound calls: customers dial the company's numbers, Telnyx sends the call to the gateway (from its signalling
 * addresses, TELNYX_ALLOWED_SOURCES), and the gateway puts translation on it toward the PBX (PBX_URI_TEMPLATE).
 * Here "Telnyx the caller" is a SIPp UAC on 127.0.0.2, the translated leg goes to a SIPp UAS playing Telnyx's
 * session side (TELNYX_OUTBOUND_PROXY, 127.0.0.1), and the PBX is a SIPp UAS on 127.0.0.3.
 * - translated: the session names the PBX target as its sip_uri, the leg goes to sip:<session_id>@<domain>;
 * - Kallglot down: the call goes untranslated straight to the PBX target;
 * - without a PBX target, Telnyx's INVITE is refused (403) as any unknown source.
 * Every rule of the outbound path holds: fallback, BYE, the session ended once.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { findMessages, startE2e, waitFor, type E2eEnv } from './harness.ts';

const DIALLED = '+4930123456'; // the company's number the customer dialled (german-numbers rule)
let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

async function inboundEnv(pbxPort: number, extra: Record<string, string> = {}): Promise<E2eEnv> {
  return startE2e({
    PBX_ALLOWED_SOURCES: '127.0.0.1/32',
    TELNYX_ALLOWED_SOURCES: '127.0.0.2/32',
    PBX_URI_TEMPLATE: `sip:{called}@127.0.0.3:${pbxPort}`,
    ...extra,
  });
}

function telnyxCaller(e: E2eEnv, scenario: string) {
  return e.sipp({
    scenario,
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localIp: '127.0.0.2',
    localPort: e.uacPort,
    service: DIALLED,
    calls: 1,
    durationMs: 200,
    timeoutSec: 15,
  });
}

describe('inbound calls from Telnyx', () => {
  it('translated: session with sip_uri = the PBX target, leg to sip:<session>@domain, ended once', async () => {
    const pbxPort = await freePort('both', '127.0.0.3');
    const e = (env = await inboundEnv(pbxPort));
    const session = e.sipp({
      scenario: 'uas-answer-200-expect-bye.xml',
      localPort: e.uasPort,
      calls: 1,
      timeoutSec: 15,
    });
    await session.ready;
    const caller = await telnyxCaller(e, 'uac-invite-200-then-bye.xml').done;
    const far = await session.done;
    const d = () => e.diag(caller, far);
    expect(caller.exitCode, d()).toBe(0);
    expect(far.exitCode, d()).toBe(0);
    const created = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions()[0], 10_000, d);
    expect(created, d()).toMatchObject({ sipUri: `sip:${DIALLED}@127.0.0.3:${pbxPort}`, endCalls: 1 });
    expect(created.endReason, d()).toBe('customer_hangup'); // the caller of an inbound call is the customer
    expect(findMessages(far.messages, 'received', 'INVITE ')[0]?.startLine, d()).toBe(
      `INVITE sip:${created.id}@sip.telnyx.com SIP/2.0`,
    );
    const newCall = e.gw.logs.find((l) => l.msg === 'new call');
    expect(newCall, d()).toMatchObject({ direction: 'inbound', source: '127.0.0.2' });
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'translated',
      endReason: 'bye_from_caller',
    });
  });

  it('Kallglot down: untranslated, straight to the PBX target', async () => {
    const pbxPort = await freePort('both', '127.0.0.3');
    const e = (env = await inboundEnv(pbxPort));
    e.sandbox.injectFailure({ endpoint: 'create', status: 500 });
    const pbx = e.sipp({
      scenario: 'uas-answer-200-expect-bye.xml',
      localIp: '127.0.0.3',
      localPort: pbxPort,
      calls: 1,
      timeoutSec: 15,
    });
    await pbx.ready;
    const caller = await telnyxCaller(e, 'uac-invite-200-then-bye.xml').done;
    const pbxResult = await pbx.done;
    const d = () => e.diag(caller, pbxResult);
    expect(caller.exitCode, d()).toBe(0);
    expect(pbxResult.exitCode, d()).toBe(0);
    expect(findMessages(pbxResult.messages, 'received', 'INVITE ')[0]?.startLine, d()).toBe(
      `INVITE sip:${DIALLED}@127.0.0.3:${pbxPort} SIP/2.0`,
    );
    expect(await e.gw.waitForLog((l) => l.msg === 'call summary'), d()).toMatchObject({
      route: 'fallback',
      endReason: 'bye_from_caller',
    });
    expect(e.sandbox.stats().created, d()).toBe(0);
  });

  it('no PBX target configured: Telnyx is an unknown source, 403, no session', async () => {
    const e = (env = await startE2e({ PBX_ALLOWED_SOURCES: '127.0.0.1/32', TELNYX_ALLOWED_SOURCES: '127.0.0.2/32' }));
    const caller = await telnyxCaller(e, 'uac-invite-expect-403.xml').done;
    const d = () => e.diag(caller);
    expect(caller.exitCode, d()).toBe(0);
    expect(e.sandbox.stats().createRequests, d()).toBe(0);
  });
});
