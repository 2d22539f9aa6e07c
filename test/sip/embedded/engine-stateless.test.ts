/**
 * Stateless refusals (SipEngine.screenInvites, RFC 3261 §8.2.7): an INVITE the screen refuses is answered once, with
 * no 100 Trying, no server transaction and no retransmission of the refusal over UDP; a retransmitted INVITE gets
 * the same refusal again (same To tag); the ACK to it matches nothing and is dropped without an answer or a log line.
 * In-dialog INVITEs are never screened, and a screen that lets an INVITE through (or throws) leaves it to onInvite.
 * T1 is 40 ms here: a stateful 503 would be retransmitted (timer G) several times within the waits below.
 */
import dgram from 'node:dgram';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import type { InboundCall, InviteScreen } from '../../../src/sip/port.ts';
import { freePort } from '../../helpers/ports.ts';
import { waitFor } from './engine-sipp-fixture.ts';

const T1 = 40;
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function rig(screen: InviteScreen) {
  const logs: Array<{ level: number; msg: string }> = [];
  const engine = new EmbeddedEngine({
    host: '127.0.0.1',
    port: await freePort('both'),
    transports: ['udp'],
    publicAddress: '127.0.0.1',
    userAgent: 'stateless-test',
    logger: pino({ level: 'debug' }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
    timers: { T1, T2: 4 * T1, T4: 5 * T1 },
  });
  const invites: InboundCall[] = [];
  engine.onInvite((call) => {
    invites.push(call);
    call.reject(486);
  });
  engine.screenInvites(screen);
  await engine.start();
  cleanups.push(() => engine.stop());
  const udp = dgram.createSocket('udp4');
  cleanups.push(() => void udp.close());
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
  const received: string[] = [];
  udp.on('message', (m) => received.push(m.toString('latin1')));
  const send = (text: string) => udp.send(Buffer.from(text), engine.localPort, '127.0.0.1');
  return { engine, invites, logs, received, send, port: udp.address().port };
}

function invite(port: number, branch: string, callId: string, toTag?: string): string {
  return [
    `INVITE sip:+4930123456@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:pbx@127.0.0.1>;tag=pbx1',
    `To: <sip:+4930123456@127.0.0.1>${toTag ? `;tag=${toTag}` : ''}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 INVITE',
    `Contact: <sip:pbx@127.0.0.1:${port}>`,
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

function ack(port: number, branch: string, callId: string, to: string): string {
  return [
    `ACK sip:+4930123456@127.0.0.1 SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=${branch};rport`,
    'Max-Forwards: 70',
    'From: <sip:pbx@127.0.0.1>;tag=pbx1',
    `To: ${to}`,
    `Call-ID: ${callId}`,
    'CSeq: 1 ACK',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
}

const header = (msg: string, name: string) => new RegExp(`\\r\\n${name}: ([^\\r]*)`, 'i').exec(msg)?.[1];
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const overloaded: InviteScreen = () => ({
  status: 503,
  reason: 'Service Unavailable (overloaded)',
  headers: [['Retry-After', '1']],
});

describe('stateless refusals (embedded engine)', () => {
  it('answers once, keeps nothing, refuses a retransmission alike and drops the ACK silently', async () => {
    const screened: string[] = [];
    const r = await rig((inv) => {
      screened.push(`${inv.callId} ${inv.source.transport}:${inv.source.address}:${inv.source.port}`);
      return overloaded(inv);
    });
    r.send(invite(r.port, 'z9hG4bK-sl-1', 'sl-1@pbx'));
    await waitFor(() => r.received.length >= 1, 'the refusal');
    const refusal = r.received[0] ?? '';
    expect(refusal).toMatch(/^SIP\/2\.0 503 Service Unavailable \(overloaded\)\r\n/);
    expect(header(refusal, 'Retry-After')).toBe('1');
    expect(header(refusal, 'Via')).toBe(
      `SIP/2.0/UDP 127.0.0.1:${r.port};branch=z9hG4bK-sl-1;rport=${r.port};received=127.0.0.1`,
    );
    expect(header(refusal, 'CSeq')).toBe('1 INVITE');
    expect(header(refusal, 'Call-ID')).toBe('sl-1@pbx');
    expect(header(refusal, 'To')).toMatch(/^<sip:\+4930123456@127\.0\.0\.1>;tag=\w+$/);
    expect(screened).toEqual([`sl-1@pbx udp:127.0.0.1:${r.port}`]);
    expect(r.engine.stats()).toMatchObject({ activeTransactions: 0, statelessRefusals: 1 });

    await pause(8 * T1); // a stateful 503 would have been retransmitted at T1, 2*T1 and 4*T1 by now
    expect(r.received).toHaveLength(1);

    r.send(invite(r.port, 'z9hG4bK-sl-1', 'sl-1@pbx')); // the same INVITE again: refused again, same To tag
    await waitFor(() => r.received.length >= 2, 'the second refusal');
    expect(r.received[1]).toBe(refusal);

    r.send(ack(r.port, 'z9hG4bK-sl-1', 'sl-1@pbx', header(refusal, 'To') ?? ''));
    await pause(4 * T1);
    expect(r.received).toHaveLength(2); // no 481, nothing
    expect(r.invites).toEqual([]);
    expect(r.engine.stats()).toMatchObject({ activeTransactions: 0, statelessRefusals: 2 });
    expect(r.logs.filter((l) => l.level >= 40)).toEqual([]); // no warn or error, not per ACK either
  });

  it('gives different requests different tags', async () => {
    const r = await rig(overloaded);
    r.send(invite(r.port, 'z9hG4bK-sl-a', 'sl-a@pbx'));
    r.send(invite(r.port, 'z9hG4bK-sl-b', 'sl-b@pbx'));
    await waitFor(() => r.received.length >= 2, 'two refusals');
    const tags = r.received.map((m) => /;tag=(\w+)/.exec(header(m, 'To') ?? '')?.[1]);
    expect(tags[0]).toBeDefined();
    expect(tags[0]).not.toBe(tags[1]);
  });

  it('lets through what the screen does not refuse, and what it throws on: 100 Trying, then onInvite', async () => {
    let calls = 0;
    const r = await rig(() => {
      calls++;
      if (calls === 2) throw new Error('screen bug');
      return undefined;
    });
    r.send(invite(r.port, 'z9hG4bK-ok-1', 'ok-1@pbx'));
    r.send(invite(r.port, 'z9hG4bK-ok-2', 'ok-2@pbx'));
    await waitFor(() => r.invites.length === 2, 'both INVITEs at onInvite');
    // Stateful: each gets its 100 Trying, and its 486 is retransmitted until ACKed (this test sends no ACK).
    const answered = (status: string) =>
      new Set(r.received.filter((m) => m.startsWith(`SIP/2.0 ${status}`)).map((m) => header(m, 'Call-ID'))).size;
    await waitFor(() => answered('486') === 2, 'the two 486s');
    expect(answered('100 Trying')).toBe(2);
    expect(r.engine.stats().statelessRefusals).toBe(0);
    expect(r.logs.filter((l) => l.msg === 'INVITE screen failed')).toHaveLength(1);
  });

  it('never screens an in-dialog INVITE (To tag): it belongs to a call already admitted', async () => {
    let calls = 0;
    const r = await rig((inv) => {
      calls++;
      return overloaded(inv);
    });
    r.send(invite(r.port, 'z9hG4bK-re-1', 're-1@pbx', 'gw-tag'));
    await waitFor(() => r.received.some((m) => m.startsWith('SIP/2.0 481 ')), 'the 481'); // no such dialog
    expect(r.received.filter((m) => m.startsWith('SIP/2.0 503'))).toEqual([]);
    expect(calls).toBe(0);
  });
});
