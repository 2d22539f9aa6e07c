/**
 * deploy/drachtio/docker-compose.yml, checked by reading it (no Docker engine here): drachtio-server pinned to a
 * release that speaks drachtio-srf 5's wire protocol, started with options it accepts, and the gateway pointed at its
 * admin port with the same secret, plus the gateway guarantees of deploy/docker-compose.yml (drain, registry volume).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { dockerfileDataDir, envDefaults, readRepoFile, ROOT } from './settings.ts';

interface Service {
  build?: { context: string; dockerfile?: string };
  image?: string;
  network_mode?: string;
  command?: string[];
  env_file?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  stop_grace_period?: string;
}

const FILE = 'deploy/drachtio/docker-compose.yml';
const compose = YAML.parse(readRepoFile(FILE)) as { services: Record<string, Service>; volumes?: object };
const drachtio = compose.services.drachtio as Service;
const gateway = compose.services.gateway as Service;
const env = gateway.environment ?? {};

/** The value after a command-line option of drachtio. */
function option(name: string): string | undefined {
  const args = drachtio.command ?? [];
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

describe(FILE, () => {
  it('pins a drachtio-server release of the 0.9 line or later (the wire protocol of drachtio-srf 5)', () => {
    const tag = /^drachtio\/drachtio-server:(\d+)\.(\d+)\.(\d+)$/.exec(drachtio.image ?? '');
    expect(tag, drachtio.image).not.toBeNull();
    expect(Number(tag![1]) * 1000 + Number(tag![2])).toBeGreaterThanOrEqual(9);
    const srf = JSON.parse(readRepoFile('package.json')).dependencies['drachtio-srf'] as string;
    expect(srf).toMatch(/^\^?5\./);
  });

  it('starts drachtio with options it accepts: a UDP+TCP contact, then its external address', () => {
    const args = drachtio.command ?? [];
    expect(args[0]).toBe('drachtio'); // the image's entrypoint.sh hands the rest to the server
    expect(option('--contact')).toMatch(/^sip:.+:5060;transport=udp,tcp$/);
    // controller.cpp: "'public-ip' argument must follow a 'contact'".
    expect(args.indexOf('--external-ip')).toBe(args.indexOf('--contact') + 2);
    expect(option('--external-ip')).toMatch(/^\$\{SIP_PUBLIC_ADDRESS:\?.+\}$/);
  });

  it('points the gateway at the admin port drachtio listens on, with the same required secret', () => {
    expect(env.SIP_ENGINE).toBe('drachtio');
    expect(env.DRACHTIO_HOST).toBe(option('--address'));
    expect(env.DRACHTIO_PORT).toBe(option('--port'));
    expect(env.DRACHTIO_SECRET).toMatch(/^\$\{DRACHTIO_SECRET:\?.+\}$/);
    expect(drachtio.environment?.DRACHTIO_SECRET).toBe(env.DRACHTIO_SECRET);
    // The admin address is loopback: both services share the host's network.
    expect(option('--address')).toBe('127.0.0.1');
    expect([drachtio.network_mode, gateway.network_mode]).toEqual(['host', 'host']);
  });

  it('runs the gateway as deploy/docker-compose.yml does: known settings, drain, registry volume', () => {
    const known = envDefaults();
    for (const name of Object.keys(env)) expect(known.has(name), name).toBe(true);
    const context = path.resolve(ROOT, 'deploy/drachtio', gateway.build?.context ?? '');
    expect(context).toBe(ROOT);
    expect(fs.existsSync(path.join(context, gateway.build?.dockerfile ?? 'Dockerfile'))).toBe(true);
    expect(gateway.env_file).toBe('../.env'); // the operator's deploy/.env, as for the main compose file
    const drain = Number(/:-(\d+)\}$/.exec(env.DRAIN_TIMEOUT_SEC ?? '')?.[1] ?? env.DRAIN_TIMEOUT_SEC);
    expect(Number.parseInt(gateway.stop_grace_period ?? '10s', 10)).toBeGreaterThan(drain + 5);
    const dataDir = dockerfileDataDir();
    const mount = gateway.volumes?.map((v) => v.split(':')).find(([, target]) => target === dataDir);
    expect(Object.keys(compose.volumes ?? {})).toContain(mount?.[0]);
  });
});
