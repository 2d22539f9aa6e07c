/**
 * Which SIP engine the end-to-end tests run the daemon with. The `drachtio` vitest project (vitest.config.ts) sets
 * E2E_SIP_ENGINE=drachtio for the call-flow suites: the daemon then runs SIP_ENGINE=drachtio, its real drachtio-srf
 * connects to the drachtio-server double (test/support/drachtio-server/) in this process, and SIPp talks to the
 * double's SIP port. The same test bodies run through both engines.
 */
import { randomBytes } from 'node:crypto';
import type { GatewayProcess } from '../helpers/gateway.ts';
import { DrachtioServerDouble } from '../support/drachtio-server/server.ts';

export type E2eEngine = 'embedded' | 'drachtio';

export const E2E_ENGINE: E2eEngine = process.env.E2E_SIP_ENGINE === 'drachtio' ? 'drachtio' : 'embedded';

export interface EngineRig {
  /** Daemon environment for the engine (empty for the embedded one). */
  env: Record<string, string>;
  /** The SIP port SIPp must use when it is not the daemon's own. */
  sipPort?: number;
  /** Wire traffic of the drachtio double, for assertion messages. */
  diag(): string;
  /** Throws unless the daemon started with this engine (so a pass through "drachtio" cannot be the embedded one). */
  check(gw: GatewayProcess): void;
  stop(): Promise<void>;
}

export async function startEngine(): Promise<EngineRig> {
  if (E2E_ENGINE !== 'drachtio') return { env: {}, diag: () => '', check: () => {}, stop: async () => {} };
  const secret = randomBytes(8).toString('hex');
  const server = new DrachtioServerDouble({ secret });
  await server.start();
  return {
    env: {
      SIP_ENGINE: 'drachtio',
      DRACHTIO_HOST: '127.0.0.1',
      DRACHTIO_PORT: String(server.adminPort),
      DRACHTIO_SECRET: secret,
    },
    sipPort: server.sipPort,
    diag: () => `--- drachtio-server double: wire messages (newest last)\n${server.wireLog()}`,
    check(gw) {
      const started = gw.logs.find((l) => l.msg === 'kallglot-sip-gateway started');
      const connected = gw.logs.some((l) => l.msg === 'connected to drachtio-server');
      if (started?.engine !== 'drachtio' || !connected)
        throw new Error('the daemon did not start on the drachtio double');
    },
    stop: () => server.stop(),
  };
}
