import { afterEach, describe, expect, it } from 'vitest';
import { freePort, isPortBound } from './ports.ts';
import { formatSippResult, runSipp, type SippRun } from './sipp.ts';

const started: SippRun[] = [];
function start(...args: Parameters<typeof runSipp>): SippRun {
  const run = runSipp(...args);
  started.push(run);
  return run;
}
afterEach(async () => {
  await Promise.all(started.splice(0).map((r) => r.stop()));
});

const count = (haystack: string | undefined, needle: string): number => (haystack ?? '').split(needle).length - 1;

async function uasAndUac(opts: {
  transport: 'udp' | 'tcp';
  uasScenario: string;
  calls: number;
  uac?: Partial<Parameters<typeof runSipp>[0]>;
}) {
  const uasPort = await freePort('both');
  const uacPort = await freePort('both');
  const uas = start({
    scenario: opts.uasScenario,
    localPort: uasPort,
    transport: opts.transport,
    calls: opts.calls,
    timeoutSec: 15,
  });
  await uas.ready;
  const uac = start({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${uasPort}`,
    localPort: uacPort,
    transport: opts.transport,
    calls: opts.calls,
    rate: 20,
    timeoutSec: 15,
    ...opts.uac,
  });
  const uacResult = await uac.done;
  // A UAS whose peer gave up would otherwise wait for its own -timeout.
  if (uacResult.exitCode !== 0) setTimeout(() => void uas.stop(), 2000);
  return { uasPort, uacPort, uac: uacResult, uas: await uas.done };
}

describe.each(['udp', 'tcp'] as const)('SIPp UAC against SIPp UAS over %s', (transport) => {
  it('completes 5 calls on both sides with the default variables', async () => {
    const { uac, uas, uasPort } = await uasAndUac({
      transport,
      uasScenario: 'uas-answer-200-expect-bye.xml',
      calls: 5,
    });
    expect(uac.exitCode, formatSippResult(uac)).toBe(0);
    expect(uas.exitCode, formatSippResult(uas)).toBe(0);
    expect(uac.messages).toContain('INVITE sip:');
    expect(uac.messages).toContain('SIP/2.0 200');
    expect(uac.messages).toContain(`INVITE sip:service@127.0.0.1:${uasPort} SIP/2.0`);
    expect(uac.messages).toContain(`Via: SIP/2.0/${transport.toUpperCase()} 127.0.0.1:`);
    expect(uac.messages).toContain('From: <sip:sipp@127.0.0.1:');
    expect(uac.messages).not.toContain('X-Kallglot-Languages');
    // In-dialog requests go to the UAS Contact, carrying its transport.
    expect(
      count(uac.messages, `BYE sip:uas@127.0.0.1:${uasPort};transport=${transport.toUpperCase()} SIP/2.0`),
    ).toBeGreaterThanOrEqual(5);
    expect(count(uas.messages, 'SIP/2.0 180 Ringing')).toBeGreaterThanOrEqual(5);
    expect(uas.messages).toContain('c=IN IP4 127.0.0.1');
  });
});

describe('SIPp scenario variables', () => {
  it('dials -s, sets From, X-Kallglot-Languages, extra headers and follows Record-Route', async () => {
    const uasPort = await freePort('both');
    const uacPort = await freePort('both');
    const uas = start({ scenario: 'uas-answer-200-expect-bye.xml', localPort: uasPort, calls: 2, timeoutSec: 15 });
    await uas.ready;
    const uac = start({
      scenario: 'uac-invite-200-then-bye.xml',
      remote: `127.0.0.1:${uasPort}`,
      localPort: uacPort,
      calls: 2,
      service: '+4930123456',
      durationMs: 50,
      vars: { from_user: '4940111', langs: 'de-DE,en-US' },
      headers: { 'X-Test-Run': 'abc', 'Record-Route': `<sip:127.0.0.1:${uasPort};lr>` },
      timeoutSec: 15,
    });
    const [u, s] = await Promise.all([uac.done, uas.done]);
    expect(u.exitCode, formatSippResult(u)).toBe(0);
    expect(s.exitCode, formatSippResult(s)).toBe(0);
    expect(s.messages).toContain(`INVITE sip:+4930123456@127.0.0.1:${uasPort} SIP/2.0`);
    expect(s.messages).toContain(`To: <sip:+4930123456@127.0.0.1:${uasPort}>`);
    expect(s.messages).toContain(`From: <sip:4940111@127.0.0.1:${uacPort}>;tag=`);
    expect(s.messages).toContain('\r\nX-Kallglot-Languages: de-DE,en-US\r\n');
    expect(s.messages).toContain('\r\nMax-Forwards: 70\r\nX-Test-Run: abc\r\n');
    // UAS echoes Record-Route; UAC turns it into a Route set on ACK and BYE.
    expect(count(u.messages, `\r\nRecord-Route: <sip:127.0.0.1:${uasPort};lr>\r\n`)).toBeGreaterThanOrEqual(4);
    expect(count(s.messages, `\r\nRoute: <sip:127.0.0.1:${uasPort};lr>\r\n`)).toBeGreaterThanOrEqual(4);
  });
});

describe('SIPp failure reporting', () => {
  it('UAC expecting 200 fails against a UAS that answers 486', async () => {
    const { uac, uas } = await uasAndUac({ transport: 'udp', uasScenario: 'uas-486-busy.xml', calls: 2 });
    expect(uac.exitCode, formatSippResult(uac)).toBe(1);
    expect(uac.messages).toContain('SIP/2.0 486 Busy Here');
    expect(uac.errors).toMatch(/unexpected message[\s\S]*486 Busy Here/);
    // SIPp ACKs the unexpected final response itself, so the busy UAS completes its scenario.
    expect(uas.exitCode, formatSippResult(uas)).toBe(0);
  });

  it('a UAC with nobody answering exits non-zero on the global timeout', async () => {
    const deadPort = await freePort('udp');
    const uac = start({
      scenario: 'uac-invite-200-then-bye.xml',
      remote: `127.0.0.1:${deadPort}`,
      localPort: await freePort('both'),
      calls: 1,
      timeoutSec: 2,
    });
    const r = await uac.done;
    expect(r.exitCode, formatSippResult(r)).toBe(255); // -timeout_error exits as a fatal error (-1)
    expect(r.stopped).toBe(false);
    expect(r.errors).toContain('timed out');
    expect(count(r.messages, 'INVITE sip:')).toBeGreaterThanOrEqual(2); // retransmitted while waiting
  });

  it('stop() kills a waiting UAS and releases its port', async () => {
    const port = await freePort('both');
    const uas = start({ scenario: 'uas-answer-200-expect-bye.xml', localPort: port, calls: 1, timeoutSec: 60 });
    await uas.ready;
    await uas.stop();
    const r = await uas.done;
    expect(r.stopped).toBe(true);
    expect(() => process.kill(uas.pid, 0)).toThrow();
    expect(isPortBound(port, 'udp')).toBe(false);
  });
});
