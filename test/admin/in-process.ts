/**
 * A Gateway running in the test process (the real composition root, ports bound on 127.0.0.1 at run time, the local
 * Kallglot sandbox since KALLGLOT_API_URL is empty), with its routing file in a temp directory. `stop()` closes
 * everything and removes the directory.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { Gateway } from '../../src/app.ts';
import { loadConfig } from '../../src/config/load.ts';

export const ADMIN_TOKEN = 'admin-test-token';

// biome-ignore lint/suspicious/noExplicitAny: JSON bodies of every admin endpoint, read field by field by the assertions
export type JsonBody = any;

export interface InProcessGateway {
  gw: Gateway;
  base: string;
  rulesFile: string;
  /** fetch() against the gateway's HTTP port, with the admin token unless `token` says otherwise. */
  request(method: string, urlPath: string, token?: string | null): Promise<{ status: number; body: JsonBody }>;
  metrics(): Promise<string>;
  stop(): Promise<void>;
}

export async function startInProcess(rules: string, env: Record<string, string> = {}): Promise<InProcessGateway> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-admin-'));
  const rulesFile = path.join(dir, 'routing.yaml');
  fs.writeFileSync(rulesFile, rules);
  const config = loadConfig({
    env: {
      SIP_HOST: '127.0.0.1',
      SIP_PORT: '0',
      SIP_PUBLIC_ADDRESS: '127.0.0.1',
      SIP_TRANSPORTS: 'udp',
      HTTP_HOST: '127.0.0.1',
      HTTP_PORT: '0',
      DATA_DIR: path.join(dir, 'data'),
      ROUTING_FILE: rulesFile,
      ADMIN_TOKEN,
      LOG_LEVEL: 'silent',
      ...env,
    },
  });
  const gw = new Gateway(config, pino({ level: 'silent' }));
  try {
    await gw.start();
  } catch (err) {
    await gw.stop().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  const base = `http://127.0.0.1:${gw.httpPort}`;
  return {
    gw,
    base,
    rulesFile,
    async request(method, urlPath, token = ADMIN_TOKEN) {
      const headers: Record<string, string> = token === null ? {} : { authorization: `Bearer ${token}` };
      const res = await fetch(`${base}${urlPath}`, { method, headers });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
    async metrics() {
      return (await fetch(`${base}/metrics`)).text();
    },
    async stop() {
      await gw.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The value of one exposition line, e.g. `sample(text, 'x_total{result="ok"}')`. */
export function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
