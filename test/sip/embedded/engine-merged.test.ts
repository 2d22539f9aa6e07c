/**
 * Merged requests (RFC 3261 §8.2.2.2): the same INVITE (Call-ID, From tag, CSeq) reaching the engine by a second path
 * (another branch) is answered 482 while the first is remembered (64*T1 after its final response, on the transaction
 * layer's timer wheel).
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { parseMessage } from '../../../src/sip/embedded/parser.ts';
import { waitFor } from './engine-sipp-fixture.ts';
import { loopbackEngine } from './loopback-engine.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

function invite(port: number, gwPort: number, branch: string): Buffer {
  return Buffer.from(
    `INVITE sip:b@127.0.0.1:${gwPort} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:${port};branch=${branch};rport\r\n` +
      'Max-Forwards: 70\r\nFrom: <sip:a@127.0.0.1>;tag=merged1\r\nTo: <sip:b@127.0.0.1>\r\nCall-ID: merged-call-1\r\n' +
      `CSeq: 1 INVITE\r\nContact: <sip:a@127.0.0.1:${port}>\r\nContent-Length: 0\r\n\r\n`,
  );
}

describe('embedded engine: merged INVITEs', () => {
  it('answers 482 to the same INVITE on another branch, after the first was answered', async () => {
    const engine = loopbackEngine();
    await engine.start();
    cleanups.push(() => engine.stop());
    engine.onInvite((call) => void call.reject(486));
    const socket = dgram.createSocket('udp4');
    await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
    cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
    const statuses: number[] = [];
    socket.on('message', (data) => {
      const parsed = parseMessage(data);
      if (parsed.ok && parsed.message.kind === 'response') statuses.push(parsed.message.status);
    });
    const port = socket.address().port;
    socket.send(invite(port, engine.localPort, 'z9hG4bKmergedA'), engine.localPort, '127.0.0.1');
    await waitFor(() => statuses.includes(486), '486 to the first INVITE');
    socket.send(invite(port, engine.localPort, 'z9hG4bKmergedB'), engine.localPort, '127.0.0.1');
    await waitFor(() => statuses.includes(482), '482 to the merged one');
    expect(statuses.filter((s) => s === 486)).toHaveLength(1); // the merged copy never reached the call logic
  });
});
