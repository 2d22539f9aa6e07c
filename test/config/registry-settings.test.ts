/**
 * The shared-registry settings (REGISTRY_URL, INSTANCE_DEAD_AFTER_SEC, REGISTRY_LEASE_INTERVAL_SEC): SQLite by
 * default, a PostgreSQL URL only, a password never repeated in an error or the logged config, and a dead-after that
 * leaves a live instance time for two renewals.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactedConfig } from '../../src/config/load.ts';

const URL_WITH_SECRET = 'postgres://gw:pa55-SECRET@db.example.com:5432/kallglot';

describe('registry settings', () => {
  it('default to the SQLite registry, dead after 15 s, a lease renewed every 3 s', () => {
    expect(loadConfig({ env: {} }).registry).toMatchObject({ url: '', instanceDeadAfterSec: 15, leaseIntervalSec: 3 });
  });

  it('take a postgres:// or postgresql:// URL', () => {
    expect(loadConfig({ env: { REGISTRY_URL: URL_WITH_SECRET } }).registry.url).toBe(URL_WITH_SECRET);
    const other = 'postgresql://db.internal/kallglot';
    expect(loadConfig({ env: { REGISTRY_URL: other } }).registry.url).toBe(other);
  });

  it('refuse any other URL, naming the setting but never its value', () => {
    for (const bad of ['mysql://gw:pa55-SECRET@db/kallglot', 'pa55-SECRET', 'postgres://']) {
      let error: unknown;
      try {
        loadConfig({ env: { REGISTRY_URL: bad } });
      } catch (err) {
        error = err;
      }
      expect(error, bad).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(/REGISTRY_URL/);
      expect((error as Error).message).not.toMatch(/SECRET/);
    }
  });

  it('refuse a dead-after shorter than two lease renewals', () => {
    expect(() => loadConfig({ env: { INSTANCE_DEAD_AFTER_SEC: '5', REGISTRY_LEASE_INTERVAL_SEC: '3' } })).toThrow(
      /INSTANCE_DEAD_AFTER_SEC.*twice.*REGISTRY_LEASE_INTERVAL_SEC/,
    );
    expect(
      loadConfig({ env: { INSTANCE_DEAD_AFTER_SEC: '6', REGISTRY_LEASE_INTERVAL_SEC: '3' } }).registry,
    ).toMatchObject({ instanceDeadAfterSec: 6, leaseIntervalSec: 3 });
    expect(() => loadConfig({ env: { REGISTRY_LEASE_INTERVAL_SEC: '0' } })).toThrow(/REGISTRY_LEASE_INTERVAL_SEC/);
  });

  it('show the URL in the logged config only as set or unset', () => {
    const config = loadConfig({ env: { REGISTRY_URL: URL_WITH_SECRET } });
    expect(redactedConfig(config).registry.url).toBe('set');
    expect(JSON.stringify(redactedConfig(config))).not.toMatch(/SECRET/);
    expect(redactedConfig(loadConfig({ env: {} })).registry.url).toBe('unset');
  });
});
