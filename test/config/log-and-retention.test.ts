/**
 * The settings of readable logs and registry retention (LOG_FORMAT, REGISTRY_RETENTION_DAYS), and the redacted
 * config the daemon logs: each secret as "set" or "unset", never its value.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config/load.ts';

describe('LOG_FORMAT', () => {
  it('defaults to auto (main.ts decides from stdout) and takes pretty or json', () => {
    expect(loadConfig({ env: {} }).log.format).toBe('auto');
    expect(loadConfig({ env: { LOG_FORMAT: 'pretty' } }).log.format).toBe('pretty');
    expect(loadConfig({ env: { LOG_FORMAT: 'json' } }).log.format).toBe('json');
  });

  it('refuses anything else, naming the setting', () => {
    expect(() => loadConfig({ env: { LOG_FORMAT: 'xml' } })).toThrow(ConfigError);
    expect(() => loadConfig({ env: { LOG_FORMAT: 'xml' } })).toThrow(/LOG_FORMAT|log\.format/);
  });
});

describe('REGISTRY_RETENTION_DAYS', () => {
  it('defaults to 30 days; 0 keeps everything', () => {
    expect(loadConfig({ env: {} }).registry.retentionDays).toBe(30);
    expect(loadConfig({ env: { REGISTRY_RETENTION_DAYS: '0' } }).registry.retentionDays).toBe(0);
    expect(loadConfig({ env: { REGISTRY_RETENTION_DAYS: '365' } }).registry.retentionDays).toBe(365);
  });

  it('refuses a negative or fractional number of days', () => {
    for (const bad of ['-1', '1.5', 'forever'])
      expect(() => loadConfig({ env: { REGISTRY_RETENTION_DAYS: bad } }), bad).toThrow(/REGISTRY_RETENTION_DAYS/);
  });
});

describe('redactedConfig', () => {
  it('shows each secret as set or unset, and never its value', () => {
    const c = loadConfig({
      env: {
        KALLGLOT_API_URL: 'http://127.0.0.1:9/v1',
        KALLGLOT_API_KEY: 'sk_live_SECRET1',
        ADMIN_TOKEN: 'SECRET2',
        TELNYX_SIP_USERNAME: 'gw',
        TELNYX_SIP_PASSWORD: 'SECRET3',
      },
    });
    const r = redactedConfig(c);
    expect(r.kallglot.apiKey).toBe('set');
    expect(r.http.adminToken).toBe('set');
    expect(r.telnyx.sipPassword).toBe('set');
    expect(r.telnyx.apiKey).toBe('unset');
    expect(r.drachtio.secret).toBe('set'); // drachtio-server's default secret: present, so set
    expect(r.telnyx.sipUsername).toBe('gw'); // not a secret: shown as it is
    expect(JSON.stringify(r)).not.toMatch(/SECRET/);
    expect(c.kallglot.apiKey).toBe('sk_live_SECRET1'); // a copy: the running config keeps its values
  });
});
