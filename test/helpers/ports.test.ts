import dgram from 'node:dgram';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, isPortBound, isPortFree } from './ports.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

function holdTcp(port: number): Promise<void> {
  const srv = net.createServer();
  closers.push(() => new Promise((r) => srv.close(() => r())));
  return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve()));
}
function holdUdp(port: number): Promise<void> {
  const sock = dgram.createSocket('udp4');
  closers.push(() => new Promise((r) => sock.close(() => r())));
  return new Promise((resolve) => sock.bind(port, '127.0.0.1', () => resolve()));
}

describe('freePort', () => {
  it('returns a port that can be bound for the requested kind', async () => {
    const tcp = await freePort('tcp');
    await holdTcp(tcp);
    const udp = await freePort('udp');
    await holdUdp(udp);
    const both = await freePort('both');
    await holdTcp(both);
    await holdUdp(both);
    expect(new Set([tcp, udp, both]).size).toBe(3);
  });

  it('never hands out the same port twice in one process', async () => {
    const ports = await Promise.all(Array.from({ length: 20 }, () => freePort('both')));
    expect(new Set(ports).size).toBe(20);
  });
});

describe('isPortFree / isPortBound', () => {
  it('see a held port as taken for its transport only', async () => {
    const port = await freePort('both');
    expect(await isPortFree(port, 'both')).toBe(true);
    expect(isPortBound(port, 'udp')).toBe(false);
    await holdUdp(port);
    expect(await isPortFree(port, 'udp')).toBe(false);
    expect(await isPortFree(port, 'tcp')).toBe(true);
    expect(isPortBound(port, 'udp')).toBe(true);
    expect(isPortBound(port, 'tcp')).toBe(false);
    await holdTcp(port);
    expect(isPortBound(port, 'tcp')).toBe(true);
  });
});
