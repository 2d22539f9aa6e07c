/**
 * Later 2xx to an outbound INVITE (answered-invite.ts): the INVITE client transaction lingers 32 s in Accepted (RFC
 * 6026) holding only a slim handler, which re-ACKs a retransmission for a live dialog and ACKs and BYEs any other
 * 2xx (a forked answer, a copy after the call ended). A raw UDP socket plays the callee so the test writes the copies.
 */
import dgram from 'node:dgram';
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import type { SipRequest } from '../../../src/sip/embedded/message.ts';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import { buildResponse } from '../../../src/sip/embedded/transaction.ts';
import { waitFor } from './engine-sipp-fixture.ts';
import { TEST_SDP, loopbackEngine } from './loopback-engine.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

const SDP = TEST_SDP;

interface Callee {
  port: number;
  received: SipRequest[];
  /** Send a 200 to the recorded INVITE with this To tag (the first answer, a copy, or a fork). */
  answer(toTag: string): void;
  count(method: string, toTag?: string): number;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function callee(): Promise<Callee> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  const received: SipRequest[] = [];
  let peer = { port: 0, address: '' };
  socket.on('message', (data, rinfo) => {
    const parsed = parseMessage(data);
    if (!parsed.ok || parsed.message.kind !== 'request') return;
    received.push(parsed.message);
    peer = { port: rinfo.port, address: rinfo.address };
    if (parsed.message.method === 'BYE') send(buildResponse(parsed.message, 200, 'OK'));
  });
  const send = (msg: Parameters<typeof serializeMessage>[0]): void =>
    void socket.send(serializeMessage(msg), peer.port, peer.address);
  return {
    port: socket.address().port,
    received,
    answer(toTag) {
      const invite = received.find((r) => r.method === 'INVITE');
      if (!invite) throw new Error('no INVITE yet');
      const contact: [string, string] = ['Contact', `<sip:callee@127.0.0.1:${socket.address().port}>`];
      send(buildResponse(invite, 200, 'OK', { toTag, headers: [contact], body: SDP, contentType: 'application/sdp' }));
    },
    count: (method, toTag) =>
      received.filter((r) => r.method === method && (toTag === undefined || r.headers.get('To')?.includes(toTag)))
        .length,
  };
}

async function engine(): Promise<EmbeddedEngine> {
  const e = loopbackEngine();
  await e.start();
  cleanups.push(() => e.stop());
  return e;
}

async function answeredCall(a: EmbeddedEngine, b: Callee) {
  const out = a.invite({ uri: `sip:callee@127.0.0.1:${b.port}`, from: { uri: 'sip:a@127.0.0.1' }, body: SDP });
  await waitFor(() => b.count('INVITE') > 0, 'INVITE');
  b.answer('t1');
  const dialog = await out.result;
  await waitFor(() => b.count('ACK', 't1') === 1, 'ACK');
  return { out, dialog };
}

describe('later 2xx to an outbound INVITE', () => {
  it('re-ACKs a retransmitted 200 of the live dialog, without BYE', async () => {
    const [a, b] = [await engine(), await callee()];
    const { dialog } = await answeredCall(a, b);
    b.answer('t1');
    await waitFor(() => b.count('ACK', 't1') === 2, 'second ACK');
    expect(b.count('BYE')).toBe(0);
    expect(dialog.ended).toBe(false);
    await dialog.bye();
  });

  it('ACKs and BYEs a forked 200, and the first dialog goes on', async () => {
    const [a, b] = [await engine(), await callee()];
    const { dialog } = await answeredCall(a, b);
    b.answer('t2');
    await waitFor(() => b.count('BYE', 't2') === 1, 'BYE of the fork');
    expect(b.count('ACK', 't2')).toBe(1);
    expect(b.count('BYE', 't1')).toBe(0);
    expect(a.stats().activeDialogs).toBe(1);
    await dialog.bye();
  });

  it('holds neither the outbound call nor its dialog while the INVITE transaction lingers; a later copy is ACKed and BYEd', async () => {
    const [a, b] = [await engine(), await callee()];
    const refs = await (async () => {
      const { out, dialog } = await answeredCall(a, b);
      await dialog.bye();
      return [new WeakRef(out), new WeakRef(dialog)];
    })();
    await waitFor(() => b.count('BYE', 't1') === 1, 'BYE');
    expect(a.stats().activeTransactions).toBeGreaterThan(0); // the INVITE in Accepted (timer M)
    await nextMacrotask();
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true]);
    b.answer('t1');
    await waitFor(() => b.count('BYE', 't1') === 2, 'BYE for the copy');
    expect(b.count('ACK', 't1')).toBe(2);
  });
});
