/**
 * Draining and OPTIONS: a dispatcher in front of several gateways (Kamailio's ds_ping) probes each with OPTIONS and
 * keeps sending calls to those that answer 200. While the app drains, the engine answers 503 with Retry-After, so
 * the dispatcher takes this gateway out; when draining is called off, 200 again.
 */
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { startEngine, waitFor } from './engine-sipp-fixture.ts';

const sockets: dgram.Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.close();
});

function options(port: number, n: number): Buffer {
  return Buffer.from(
    [
      `OPTIONS sip:gw@127.0.0.1:${port} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK-probe-${n}-${Date.now()};rport`,
      'Max-Forwards: 70',
      'From: <sip:dispatcher@127.0.0.1>;tag=ds',
      'To: <sip:gw@127.0.0.1>',
      `Call-ID: probe-${n}-${Date.now()}@127.0.0.1`,
      `CSeq: ${n} OPTIONS`,
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n'),
  );
}

describe('OPTIONS while draining (embedded engine)', () => {
  it('answers 200, then 503 with Retry-After while draining, then 200 again', async () => {
    const engine = await startEngine();
    const udp = dgram.createSocket('udp4');
    sockets.push(udp);
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', () => resolve()));
    const replies: string[] = [];
    udp.on('message', (m) => replies.push(m.toString('latin1')));
    const probe = async (n: number): Promise<string> => {
      udp.send(options(engine.localPort, n), engine.localPort, '127.0.0.1');
      await waitFor(() => replies.length >= n, `the answer to probe ${n}`);
      return replies[n - 1]!;
    };

    expect(await probe(1)).toMatch(/^SIP\/2\.0 200 OK\r\n/);
    engine.setDraining(true);
    const draining = await probe(2);
    expect(draining).toMatch(/^SIP\/2\.0 503 Service Unavailable\r\n/);
    expect(draining).toMatch(/\r\nRetry-After: \d+\r\n/i);
    engine.setDraining(false);
    expect(await probe(3)).toMatch(/^SIP\/2\.0 200 OK\r\n/);
  });
});
