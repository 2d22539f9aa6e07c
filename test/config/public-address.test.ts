/** IPv6 in the configuration: the dual-stack SIP_HOST default, SIP_PUBLIC_ADDRESS per family, bracketed proxies. */
import os from 'node:os';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/load.ts';
import { publicAddresses, publicAddressProblem } from '../../src/config/public-address.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

function problems(env: Record<string, string>): readonly string[] {
  try {
    loadConfig({ env });
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

type Iface = os.NetworkInterfaceInfo;
function iface(address: string, internal = false): Iface {
  const family = address.includes(':') ? 'IPv6' : 'IPv4';
  return { address, family, internal, netmask: '', mac: '', cidr: null, scopeid: 0 } as Iface;
}

describe('SIP_HOST and HTTP_HOST', () => {
  it('listen dual-stack (::) by default for SIP, and accept :: and ::1 for both', () => {
    expect(loadConfig({ env: {} }).sip.host).toBe('::');
    const c = loadConfig({ env: { SIP_HOST: '::1', HTTP_HOST: '::' } });
    expect(c.sip.host).toBe('::1');
    expect(c.http.host).toBe('::');
    expect(c.sip.publicAddress).toBe('::1');
  });
});

describe('TELNYX_OUTBOUND_PROXY', () => {
  it('takes a bracketed IPv6 address, with or without a port', () => {
    expect(loadConfig({ env: { TELNYX_OUTBOUND_PROXY: '[::1]:5090' } }).telnyx.outboundProxy).toBe('[::1]:5090');
    expect(loadConfig({ env: { TELNYX_OUTBOUND_PROXY: '[2001:db8::1]' } }).telnyx.outboundProxy).toBe('[2001:db8::1]');
  });

  it('refuses a bare IPv6 address (asking for brackets) and a bracketed non-address', () => {
    expect(problems({ TELNYX_OUTBOUND_PROXY: '::1' }).join('\n')).toMatch(/IPv6 addresses go in brackets: \[::1\]/);
    expect(problems({ TELNYX_OUTBOUND_PROXY: '[:::]:5060' }).join('\n')).toMatch(/TELNYX_OUTBOUND_PROXY/);
    expect(problems({ TELNYX_OUTBOUND_PROXY: '[::1]:70000' }).join('\n')).toMatch(/port out of range/);
  });
});

describe('SIP_PUBLIC_ADDRESS', () => {
  it('takes one address or hostname, IPv6 with or without brackets', () => {
    for (const ok of ['', '192.0.2.5', '2001:db8::5', '[2001:db8::5]', 'gw.example.com', '192.0.2.5, [2001:db8::5]'])
      expect(publicAddressProblem(ok), ok).toBeUndefined();
  });

  it('refuses ports, two of one family, more than two, and garbage', () => {
    expect(publicAddressProblem('192.0.2.5:5060')).toMatch(/no port/);
    expect(publicAddressProblem('[2001:db8::5]:5060')).toMatch(/no port/);
    expect(publicAddressProblem('192.0.2.5,192.0.2.6')).toMatch(/one IPv4 and one IPv6/);
    expect(publicAddressProblem('192.0.2.5,2001:db8::5,::1')).toMatch(/at most two/);
    expect(publicAddressProblem('gw example')).toMatch(/not an IP address or hostname/);
    expect(problems({ SIP_PUBLIC_ADDRESS: '192.0.2.5:5060' }).join('\n')).toMatch(/SIP_PUBLIC_ADDRESS/);
  });

  it('gives each family its own address when given "IPv4,IPv6" (either order)', () => {
    const c = loadConfig({ env: { SIP_PUBLIC_ADDRESS: '[2001:db8::5],192.0.2.5' } });
    expect(c.sip.publicAddress).toBe('192.0.2.5');
    expect(c.sip.publicAddress6).toBe('2001:db8::5');
    const one = loadConfig({ env: { SIP_PUBLIC_ADDRESS: '[2001:db8::5]' } });
    expect(one.sip.publicAddress).toBe('2001:db8::5');
    expect(one.sip.publicAddress6).toBeUndefined();
  });

  it('derives, for ::, an IPv4 and a non-link-local IPv6 of this machine', () => {
    vi.spyOn(os, 'networkInterfaces').mockReturnValue({
      lo: [iface('127.0.0.1', true), iface('::1', true)],
      eth0: [iface('fe80::1'), iface('2001:db8::7'), iface('192.0.2.7')],
    });
    expect(publicAddresses('', '::')).toEqual({ publicAddress: '192.0.2.7', publicAddress6: '2001:db8::7' });
    expect(publicAddresses('', '0.0.0.0')).toEqual({ publicAddress: '192.0.2.7' });
    expect(publicAddresses('', '2001:db8::9')).toEqual({ publicAddress: '2001:db8::9' });
  });

  it('derives loopback addresses for :: on a machine with no other address', () => {
    vi.spyOn(os, 'networkInterfaces').mockReturnValue({ lo: [iface('127.0.0.1', true), iface('::1', true)] });
    expect(publicAddresses('', '::')).toEqual({ publicAddress: '127.0.0.1', publicAddress6: '::1' });
  });
});
