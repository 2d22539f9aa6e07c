/**
 * The UDP socket's lookup: dgram asks it for every datagram's destination. An IP address is answered before
 * lookupAddress returns (the datagram leaves within send(), not a tick later); a name still goes to dns.lookup.
 */
import type dgram from 'node:dgram';
import { describe, expect, it } from 'vitest';
import { bindUdp, lookupAddress } from '../../../src/sip/embedded/listen.ts';

describe('lookupAddress', () => {
  it('answers IPv4 and IPv6 addresses at once, with their family', () => {
    const answers: unknown[] = [];
    lookupAddress('192.0.2.7', 4, (err, address, family) => answers.push([err, address, family]));
    lookupAddress('::ffff:192.0.2.7', 6, (err, address, family) => answers.push([err, address, family]));
    expect(answers).toEqual([
      [null, '192.0.2.7', 4],
      [null, '::ffff:192.0.2.7', 6],
    ]);
  });

  it('resolves a name through dns.lookup, later', async () => {
    let answered = false;
    const result = new Promise<[string, number]>((resolve, reject) =>
      lookupAddress('localhost', 4, (err, address, family) => {
        answered = true;
        if (err) reject(err);
        else resolve([address, family]);
      }),
    );
    expect(answered).toBe(false);
    expect(await result).toEqual(['127.0.0.1', 4]);
  });

  it('is what the bound socket sends with: a datagram to an address arrives', async () => {
    const got: string[] = [];
    const receiver = await bindUdp('127.0.0.1', 0, { message: (d) => got.push(d.toString()), error: () => {} });
    const sender = await bindUdp('127.0.0.1', 0, { message: () => {}, error: () => {} });
    try {
      const sent = new Promise<Error | null>((resolve) =>
        sender.send('ping', receiver.address().port, '127.0.0.1', (err) => resolve(err)),
      );
      expect(await sent).toBeNull();
      for (let i = 0; i < 200 && got.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 10));
      expect(got).toEqual(['ping']);
    } finally {
      for (const s of [receiver, sender] as dgram.Socket[]) s.close();
    }
  });
});
