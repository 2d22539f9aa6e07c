/** Next-hop resolution: Request-URI hosts and the outbound proxy, IPv6 literals included. */
import dns from 'node:dns/promises';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { parseHostPort, resolveDestination, resolveHost } from '../../../src/sip/embedded/resolve.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe('parseHostPort', () => {
  it('reads host, host:port and bracketed IPv6 with and without a port', () => {
    expect(parseHostPort('sip.telnyx.com')).toEqual({ host: 'sip.telnyx.com', port: undefined });
    expect(parseHostPort('192.0.2.10:5090')).toEqual({ host: '192.0.2.10', port: 5090 });
    expect(parseHostPort('[::1]:5090')).toEqual({ host: '::1', port: 5090 });
    expect(parseHostPort('[2001:db8::1]')).toEqual({ host: '2001:db8::1', port: undefined });
  });

  it('refuses a bare IPv6 address, saying to bracket it', () => {
    expect(() => parseHostPort('2001:db8::1')).toThrow(/\[2001:db8::1\]:5060/);
    expect(() => parseHostPort('[::1')).toThrow(/bad host:port/);
  });
});

describe('resolveDestination', () => {
  it('sends to the IPv6 literal of a sip:user@[v6]:port Request-URI', async () => {
    expect(await resolveDestination('sip:user@[2001:db8::1]:5070', undefined, 'udp')).toEqual({
      transport: 'udp',
      address: '2001:db8::1',
      port: 5070,
    });
    expect(await resolveDestination('sip:user@[::1];transport=tcp', undefined, 'udp')).toEqual({
      transport: 'tcp',
      address: '::1',
      port: 5060,
    });
  });

  it('goes through an IPv6 outbound proxy whatever the Request-URI says', async () => {
    expect(await resolveDestination('sip:sess_1@sip.telnyx.com', '[::1]:5090', 'tcp')).toEqual({
      transport: 'tcp',
      address: '::1',
      port: 5090,
    });
  });

  it('sends sips: URIs and ;transport=tls over TLS, to 5061 unless a port is given', async () => {
    expect(await resolveDestination('sips:sess_1@192.0.2.7', undefined, 'udp')).toEqual({
      transport: 'tls',
      address: '192.0.2.7',
      port: 5061,
    });
    expect(await resolveDestination('sip:sess_1@192.0.2.7;transport=TLS', undefined, 'udp')).toEqual({
      transport: 'tls',
      address: '192.0.2.7',
      port: 5061,
    });
    expect(await resolveDestination('sips:sess_1@192.0.2.7:5071', undefined, 'tcp')).toMatchObject({ port: 5071 });
  });

  it('through an outbound proxy: TLS for tls or a sips: URI, 5061 by default, the proxy name checked when it has one', async () => {
    expect(await resolveDestination('sip:sess_1@sip.telnyx.com', '192.0.2.8', 'tls')).toEqual({
      transport: 'tls',
      address: '192.0.2.8',
      port: 5061,
      serverName: undefined,
    });
    expect(await resolveDestination('sips:sess_1@sip.telnyx.com', '192.0.2.8:5091', 'udp')).toMatchObject({
      transport: 'tls',
      port: 5091,
    });
    vi.spyOn(dns, 'lookup').mockImplementation((async () => ({
      address: '192.0.2.9',
      family: 4,
    })) as unknown as typeof dns.lookup);
    expect(await resolveDestination('sip:sess_1@sip.telnyx.com', 'SBC.Example.test', 'tls')).toEqual({
      transport: 'tls',
      address: '192.0.2.9',
      port: 5061,
      serverName: 'sbc.example.test',
    });
    expect(await resolveDestination('sip:sess_1@sip.telnyx.com', 'sbc.example.test', 'udp')).toEqual({
      transport: 'udp',
      address: '192.0.2.9',
      port: 5060,
    });
  });

  it('looks hostnames up in the family the sockets reach, and leaves IP literals alone', async () => {
    const lookup = vi
      .spyOn(dns, 'lookup')
      .mockImplementation((async () => ({ address: '192.0.2.44', family: 4 })) as unknown as typeof dns.lookup);
    expect(await resolveHost('sip.example.com', 4)).toBe('192.0.2.44');
    expect(lookup).toHaveBeenLastCalledWith('sip.example.com', { family: 4 });
    await resolveDestination('sip:x@sip.example.com', undefined, 'udp', 6);
    expect(lookup).toHaveBeenLastCalledWith('sip.example.com', { family: 6 });
    await resolveDestination('sip:x@sip.example.com', undefined, 'udp');
    expect(lookup).toHaveBeenLastCalledWith('sip.example.com', { family: 0 });
    lookup.mockClear();
    expect(await resolveHost('[2001:db8::7]', 4)).toBe('2001:db8::7');
    expect(lookup).not.toHaveBeenCalled();
  });
});
