/** The settings of RFC 3263 resolution, failover and probing toward Telnyx, and the CPS default. */
import { describe, expect, it } from 'vitest';
import { checkConfig, loadConfig } from '../../src/config/load.ts';

const problems = (env: NodeJS.ProcessEnv): string[] => checkConfig({ env }).errors;

describe('Telnyx targets settings', () => {
  it('defaults: system resolver, 3 s per SBC, a probe every 30 s, 3 failures, 20 calls per second', () => {
    const config = loadConfig({ env: {} });
    expect(config.sip.dnsServers).toEqual([]);
    expect(config.telnyx).toMatchObject({ targetTimeoutMs: 3000, probeIntervalSec: 30, probeFailures: 3 });
    expect(config.calls.maxCallsPerSecond).toBe(20);
  });

  it('reads DNS_SERVERS as ip, ip:port and [v6]:port', () => {
    const config = loadConfig({
      env: {
        DNS_SERVERS: '127.0.0.53:5353, 192.0.2.53,[2001:db8::53]:53,2001:db8::54',
        TELNYX_TARGET_TIMEOUT_MS: '1500',
        TELNYX_PROBE_INTERVAL_SEC: '0',
        TELNYX_PROBE_FAILURES: '1',
      },
    });
    expect(config.sip.dnsServers).toEqual(['127.0.0.53:5353', '192.0.2.53', '[2001:db8::53]:53', '2001:db8::54']);
    expect(config.telnyx).toMatchObject({ targetTimeoutMs: 1500, probeIntervalSec: 0, probeFailures: 1 });
  });

  it('refuses host names and bad ports in DNS_SERVERS, and a zero timeout or failure count', () => {
    expect(problems({ DNS_SERVERS: 'dns.example.com' })[0]).toMatch(
      /^DNS_SERVERS \(sip\.dnsServers\).*"dns\.example\.com" is not ip or ip:port/,
    );
    expect(problems({ DNS_SERVERS: '127.0.0.1:99999' })[0]).toMatch(/is not ip or ip:port/);
    expect(problems({ TELNYX_TARGET_TIMEOUT_MS: '0' })[0]).toMatch(/^TELNYX_TARGET_TIMEOUT_MS.*1 or more/);
    expect(problems({ TELNYX_PROBE_FAILURES: '0' })[0]).toMatch(/^TELNYX_PROBE_FAILURES.*1 or more/);
  });
});
