/**
 * deploy/docker-compose.yml and what it mounts, checked by reading them (no Docker engine is needed, or used):
 * the gateway cannot start advertising its bridge address, Docker waits out the drain, the registry lives on a
 * volume at the image's DATA_DIR, and Prometheus scrapes the gateway's HTTP port with the shipped alert rules.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { dockerfileDataDir, envDefault, envDefaults, parseEnvFile, readRepoFile, ROOT } from './settings.ts';

interface Service {
  build?: { context: string; dockerfile?: string };
  image?: string;
  network_mode?: string;
  env_file?: string | string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  stop_signal?: string;
  stop_grace_period?: string;
}

interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

interface PrometheusConfig {
  rule_files?: string[];
  scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[] }> }>;
}

const DEPLOY = path.join(ROOT, 'deploy');
const compose = YAML.parse(readRepoFile('deploy/docker-compose.yml')) as Compose;
const gateway = compose.services.gateway as Service;
const env = gateway.environment ?? {};

/** A Compose duration ("45s", "1m30s") in seconds. */
function seconds(duration: string): number {
  let total = 0;
  for (const [, n, unit] of duration.matchAll(/(\d+)(h|m|s)/g)) total += Number(n) * { h: 3600, m: 60, s: 1 }[unit!]!;
  return total;
}

/** A setting's value in the container: the literal, or the default of `${VAR:-default}`, or the daemon's default. */
function settingValue(name: string): string {
  const v = env[name];
  if (v === undefined) return String(envDefault(name));
  return /^\$\{[A-Z_]+:-([^}]*)\}$/.exec(v)?.[1] ?? v;
}

describe('deploy/docker-compose.yml', () => {
  it('builds the gateway from the repository Dockerfile', () => {
    const context = path.resolve(DEPLOY, gateway.build?.context ?? '');
    expect(fs.existsSync(path.join(context, gateway.build?.dockerfile ?? 'Dockerfile'))).toBe(true);
    expect(context).toBe(ROOT);
  });

  it('never advertises the bridge address: host networking, or SIP_PUBLIC_ADDRESS required', () => {
    if (gateway.network_mode === 'host') return;
    expect(env.SIP_PUBLIC_ADDRESS).toMatch(/^\$\{SIP_PUBLIC_ADDRESS:\?.+\}$/);
    // On a bridge network the SIP port must be published on both transports, and HTTP for the webhooks.
    const sip = settingValue('SIP_PORT');
    expect(gateway.ports).toEqual(expect.arrayContaining([`${sip}:${sip}/udp`, `${sip}:${sip}/tcp`]));
    const http = settingValue('HTTP_PORT');
    expect(gateway.ports?.some((p) => p.endsWith(`:${http}/tcp`) || p.endsWith(`:${http}`))).toBe(true);
  });

  it('waits longer than the drain before it kills the gateway', () => {
    const drain = Number(settingValue('DRAIN_TIMEOUT_SEC'));
    expect(drain).toBeGreaterThan(0);
    expect(gateway.stop_signal ?? 'SIGTERM').toBe('SIGTERM');
    expect(seconds(gateway.stop_grace_period ?? '10s')).toBeGreaterThan(drain + 5); // + the session-end flush
  });

  it("keeps the registry on a named volume mounted at the image's DATA_DIR", () => {
    const dataDir = dockerfileDataDir();
    expect(env.DATA_DIR ?? dataDir).toBe(dataDir);
    const mount = gateway.volumes?.map((v) => v.split(':')).find(([, target]) => target === dataDir);
    expect(mount, `a volume at ${dataDir}`).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(mount?.[0]);
  });

  it('sets only settings the daemon knows, and its env file is the documented example', () => {
    const known = envDefaults();
    for (const name of Object.keys(env)) expect(known.has(name), name).toBe(true);
    expect(gateway.env_file).toBe('.env'); // the operator's copy of gateway.env.example, ignored by git
    expect(readRepoFile('.gitignore').split('\n')).toContain('deploy/.env');
    for (const name of parseEnvFile(readRepoFile('deploy/gateway.env.example')).keys())
      expect(known.has(name), `gateway.env.example: ${name}`).toBe(true);
  });

  it("has Prometheus scrape the gateway's /metrics on its HTTP port, with the alert rules loaded", () => {
    const prometheus = compose.services.prometheus as Service;
    const mounts = new Map(prometheus.volumes?.map((v) => [v.split(':')[1], v.split(':')[0]] as const));
    const configFile = mounts.get('/etc/prometheus/prometheus.yml');
    expect(configFile).toBe('./prometheus/prometheus.yml');
    const config = YAML.parse(fs.readFileSync(path.resolve(DEPLOY, configFile!), 'utf8')) as PrometheusConfig;
    const job = config.scrape_configs.find((j) => j.job_name === 'kallglot-gateway'); // alerts.yml matches on it
    expect(job).toBeDefined();
    expect(job?.metrics_path ?? '/metrics').toBe('/metrics');
    expect(job?.static_configs.flatMap((s) => s.targets)).toContain(`gateway:${settingValue('HTTP_PORT')}`);
    // Each rule file is mounted next to the config, where Prometheus resolves the relative name.
    for (const rules of config.rule_files ?? []) {
      const source = mounts.get(`/etc/prometheus/${rules}`);
      expect(source, `${rules} mounted`).toBe(`./prometheus/${rules}`);
    }
    expect(config.rule_files).toContain('alerts.yml');
  });
});
