/**
 * Failover of one outbound INVITE over RFC 3263 targets, in-process: the embedded engine resolves an SRV set from an
 * in-memory DNS pointing at scripted SBCs on 127.0.0.2 and 127.0.0.3, and the failover rules (failover.ts) decide.
 */
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import { judgeAttempt } from '../../../src/sip/embedded/failover.ts';
import { createResponse, SipHeaders } from '../../../src/sip/embedded/message.ts';
import { SipError } from '../../../src/sip/port.ts';
import { freePort } from '../../helpers/ports.ts';
import { FakeDns } from './fake-dns.ts';
import { FakeSbc, type SbcBehaviour } from './fake-sbc.ts';

const DOMAIN = 'sip.example.test';
const TARGET_TIMEOUT_MS = 300;
const started: Array<{ stop(): Promise<void> | void }> = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((s) => s.stop()));
});

interface Rig {
  engine: EmbeddedEngine;
  sbc1: FakeSbc;
  sbc2: FakeSbc;
  attempts: string[];
  invite(opts?: { targetTimeoutMs?: number }): ReturnType<EmbeddedEngine['invite']>;
}

async function rig(b1: SbcBehaviour, b2: SbcBehaviour, extra: { probe?: boolean } = {}): Promise<Rig> {
  const sbc1 = await FakeSbc.start('127.0.0.2', b1);
  const sbc2 = await FakeSbc.start('127.0.0.3', b2);
  started.push({ stop: () => sbc1.close() }, { stop: () => sbc2.close() });
  const dns = new FakeDns({
    srv: {
      [`_sip._udp.${DOMAIN}`]: [
        { name: 'sbc2.example.test', port: sbc2.port, priority: 20, weight: 0 },
        { name: 'sbc1.example.test', port: sbc1.port, priority: 10, weight: 0 },
      ],
    },
    a: { 'sbc1.example.test': ['127.0.0.2'], 'sbc2.example.test': ['127.0.0.3'] },
  });
  const attempts: string[] = [];
  const engine = new EmbeddedEngine({
    host: '127.0.0.1',
    port: await freePort('udp'),
    transports: ['udp'],
    publicAddress: '127.0.0.1',
    userAgent: 'failover-test',
    logger: pino({ level: 'silent' }),
    observer: {
      sipMessage: () => undefined,
      parseError: () => undefined,
      targetAttempt: (target, result) => attempts.push(`${target} ${result}`),
    },
    targets: {
      dnsClient: dns,
      probeFailures: 2,
      probe: extra.probe
        ? { uris: [{ uri: `sip:${DOMAIN}`, transport: 'udp' }], intervalMs: 100, timeoutMs: 100 }
        : undefined,
    },
  });
  await engine.start();
  started.push(engine);
  const invite: Rig['invite'] = (opts = {}) =>
    engine.invite({
      uri: `sip:+4930123@${DOMAIN}`,
      from: { uri: 'sip:+4940111@gw.example.test' },
      body: Buffer.from('v=0\r\n'),
      contentType: 'application/sdp',
      targetTimeoutMs: opts.targetTimeoutMs ?? TARGET_TIMEOUT_MS,
    });
  return { engine, sbc1, sbc2, attempts, invite };
}

const sbc1Key = (r: Rig) => `udp:127.0.0.2:${r.sbc1.port}`;
const sbc2Key = (r: Rig) => `udp:127.0.0.3:${r.sbc2.port}`;

async function failure(p: Promise<unknown>): Promise<SipError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof SipError)) throw new Error(`expected a SipError, got ${String(err)}`);
  return err;
}

describe('INVITE failover over SRV targets', () => {
  it('a silent first SBC costs targetTimeoutMs: the second answers the same call (new branch, next CSeq)', async () => {
    const r = await rig('silent', 'answer');
    const t0 = Date.now();
    const dialog = await r.invite().result;
    const setupMs = Date.now() - t0;
    expect(setupMs).toBeGreaterThanOrEqual(TARGET_TIMEOUT_MS);
    expect(setupMs).toBeLessThan(TARGET_TIMEOUT_MS + 1500);
    const [first] = r.sbc1.requests('INVITE');
    const [second] = r.sbc2.requests('INVITE');
    expect(second!.headers.get('Call-ID')).toBe(first!.headers.get('Call-ID'));
    expect(second!.headers.get('From')).toBe(first!.headers.get('From'));
    expect(first!.headers.get('CSeq')).toBe('1 INVITE');
    expect(second!.headers.get('CSeq')).toBe('2 INVITE');
    expect(second!.headers.get('Via')).not.toBe(first!.headers.get('Via'));
    expect(r.attempts).toEqual([`${sbc1Key(r)} timeout`, `${sbc2Key(r)} answered`]);
    // The abandoned transaction stops retransmitting: no INVITE datagram to the dead SBC after its timeout.
    const sent = r.sbc1.received.length;
    await new Promise((res) => setTimeout(res, 1200));
    expect(r.sbc1.received.length).toBe(sent);
    await dialog.bye();
  });

  it('holds a silent SBC down: the next call goes straight to the second', async () => {
    const r = await rig('silent', 'answer');
    await (await r.invite().result).bye();
    expect(r.engine.targets()).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ target: sbc1Key(r), up: false, down: 'invite' }),
        expect.objectContaining({ target: sbc2Key(r), up: true }),
      ]),
    );
    const t0 = Date.now();
    await (await r.invite().result).bye();
    expect(Date.now() - t0).toBeLessThan(TARGET_TIMEOUT_MS);
    expect(r.sbc1.requests('INVITE')).toHaveLength(1);
    expect(r.sbc2.requests('INVITE')).toHaveLength(2);
  });

  it('fails over on a 503 without holding the SBC down; with Retry-After it is held that long', async () => {
    const r = await rig({ status: 503 }, 'answer');
    await (await r.invite().result).bye();
    expect(r.attempts).toEqual([`${sbc1Key(r)} unavailable`, `${sbc2Key(r)} answered`]);
    expect(r.engine.targets().find((t) => t.target === sbc1Key(r))?.up).toBe(true);
    r.sbc1.behaviour = { status: 503, headers: [['Retry-After', '120']] };
    await (await r.invite().result).bye();
    const held = r.engine.targets().find((t) => t.target === sbc1Key(r));
    expect(held).toMatchObject({ up: false, down: 'invite' });
    expect(Date.parse(held!.downUntil!) - Date.now()).toBeGreaterThan(110_000);
  });

  it('never fails over after another final response, nor on a 503 CPS limit, nor on a 408 after ringing', async () => {
    for (const behaviour of [
      { status: 486, reason: 'Busy Here' },
      { status: 503, reason: 'CPS Limit reached P05' },
      { status: 408, reason: 'Request Timeout', ringFirst: true },
      { status: 404, reason: 'Not Found' },
    ]) {
      const r = await rig(behaviour, 'answer');
      const err = await failure(r.invite().result);
      expect(err).toMatchObject({ status: behaviour.status, reason: behaviour.reason });
      expect(r.sbc2.requests('INVITE')).toHaveLength(0);
    }
  });

  it('fails over on a 408 the SBC sent before any 18x', async () => {
    const r = await rig({ status: 408 }, 'answer');
    await (await r.invite().result).bye();
    expect(r.attempts).toEqual([`${sbc1Key(r)} unavailable`, `${sbc2Key(r)} answered`]);
  });

  it('every SBC silent: 503 after one timeout each, then later INVITEs fail at once and reach nobody', async () => {
    const r = await rig('silent', 'silent');
    const t0 = Date.now();
    const err = await failure(r.invite().result);
    expect(err.status).toBe(503);
    expect(Date.now() - t0).toBeLessThan(2 * TARGET_TIMEOUT_MS + 1500);
    const before = r.sbc1.received.length + r.sbc2.received.length;
    const t1 = Date.now();
    const again = await failure(r.invite().result);
    expect(again.status).toBe(503);
    expect(Date.now() - t1).toBeLessThan(TARGET_TIMEOUT_MS); // no target was waited on
    expect(r.sbc1.received.length + r.sbc2.received.length).toBe(before);
    expect(r.engine.targets().every((t) => !t.up)).toBe(true);
  });

  it('CANCELs an SBC given up on that rings after all, and ACKs its 487', async () => {
    const r = await rig({ lateMs: TARGET_TIMEOUT_MS + 200, late: 'ring' }, 'answer');
    const dialog = await r.invite().result;
    await waitFor(() => r.sbc1.requests('ACK').length === 1);
    const [invite] = r.sbc1.requests('INVITE');
    const [cancel] = r.sbc1.requests('CANCEL');
    expect(cancel!.headers.get('Via')).toBe(invite!.headers.get('Via'));
    expect(cancel!.headers.get('CSeq')).toBe('1 CANCEL');
    expect(r.sbc1.requests('ACK')[0]!.headers.get('CSeq')).toBe('1 ACK');
    await dialog.bye();
    expect(r.sbc2.requests('BYE')).toHaveLength(1);
  });

  it('ACKs and BYEs a late 200 from an SBC given up on', async () => {
    const r = await rig({ lateMs: TARGET_TIMEOUT_MS + 200, late: 'answer' }, 'answer');
    const dialog = await r.invite().result;
    await waitFor(() => r.sbc1.requests('BYE').length === 1);
    expect(r.sbc1.requests('ACK')).toHaveLength(1);
    expect(r.sbc2.requests('BYE')).toHaveLength(0);
    await dialog.bye();
  });

  it('a CANCEL while the first SBC is silent tries no further target', async () => {
    const r = await rig('silent', 'answer');
    const call = r.invite();
    await new Promise((res) => setTimeout(res, 50));
    call.cancel();
    expect((await failure(call.result)).status).toBe(487);
    await new Promise((res) => setTimeout(res, TARGET_TIMEOUT_MS + 200));
    expect(r.sbc2.requests('INVITE')).toHaveLength(0);
  });
});

describe('OPTIONS probing', () => {
  it('takes an SBC that stops answering out after N probes, and puts it back when it answers again', async () => {
    const r = await rig('answer', 'answer', { probe: true });
    const target = (): unknown => r.engine.targets().find((t) => t.target === sbc1Key(r));
    await waitFor(() => (target() as { lastProbe?: { result: string } } | undefined)?.lastProbe?.result === '200');
    expect(target()).toMatchObject({ up: true, probeFailures: 0 });
    expect(r.sbc2.requests('OPTIONS').length).toBeGreaterThan(0);
    r.sbc1.answersOptions = false;
    await waitFor(() => (target() as { up: boolean }).up === false);
    expect(target()).toMatchObject({ down: 'probe', lastProbe: { result: 'timeout' } });
    // Out of rotation: a call goes to the second SBC at once.
    await (await r.invite().result).bye();
    expect(r.sbc1.requests('INVITE')).toHaveLength(0);
    r.sbc1.answersOptions = true;
    await waitFor(() => (target() as { up: boolean }).up === true);
    await (await r.invite().result).bye();
    expect(r.sbc1.requests('INVITE')).toHaveLength(1);
  });
});

describe('OPTIONS probe answers', () => {
  it('counts a 503 (draining) as a failure, and any other answer, even 404, as alive', async () => {
    const r = await rig('answer', 'answer', { probe: true });
    const target = () => r.engine.targets().find((t) => t.target === sbc1Key(r));
    r.sbc1.optionsStatus = 503;
    await waitFor(() => target()?.up === false);
    expect(target()).toMatchObject({ down: 'probe', lastProbe: { result: '503' } });
    r.sbc1.optionsStatus = 404;
    await waitFor(() => target()?.up === true);
    expect(target()).toMatchObject({ probeFailures: 0, lastProbe: { result: '404' } });
  });
});

describe('judgeAttempt', () => {
  const res = (status: number, reason = 'x', headers: Array<[string, string]> = []) => {
    const h = new SipHeaders();
    for (const [n, v] of headers) h.append(n, v);
    return createResponse(status, reason, h);
  };

  it('goes on after a timeout or a transport error, holding the target down', () => {
    expect(judgeAttempt(res(408), 'timeout', false, false)).toMatchObject({ result: 'timeout', failover: true });
    const t = judgeAttempt(res(503), 'transport', false, false);
    expect(t).toMatchObject({ result: 'transport_error', failover: true });
    expect(t.holdMs).toBeGreaterThan(0);
  });

  it('caps a Retry-After hold and ignores a garbled one', () => {
    expect(judgeAttempt(res(503, 'x', [['Retry-After', '86400']]), undefined, false, false).holdMs).toBe(300_000);
    expect(judgeAttempt(res(503, 'x', [['Retry-After', 'soon']]), undefined, false, false).holdMs).toBe(0);
  });

  it('stops once the call was cancelled, whatever happened', () => {
    expect(judgeAttempt(res(408), 'timeout', false, true).failover).toBe(false);
    expect(judgeAttempt(res(503), undefined, false, true)).toMatchObject({ result: 'cancelled', failover: false });
  });
});

async function waitFor(pred: () => boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}
