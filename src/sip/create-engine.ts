/** Pick the SIP engine adapter from config. The call logic only ever sees the SipEngine port. */
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { EmbeddedEngine } from './embedded/engine.ts';
import type { SipEngine } from './port.ts';

export interface SipTrafficObserver {
  sipMessage(direction: 'in' | 'out', methodOrStatus: string | number): void;
  parseError(): void;
}

export async function createEngine(
  config: GatewayConfig,
  logger: Logger,
  observer?: SipTrafficObserver,
): Promise<SipEngine> {
  if (config.sip.engine === 'drachtio') {
    const { DrachtioEngine } = await import('./drachtio/engine.ts');
    return new DrachtioEngine(config, logger);
  }
  return new EmbeddedEngine({
    host: config.sip.host,
    port: config.sip.port,
    transports: config.sip.transports,
    publicAddress: config.sip.publicAddress,
    publicAddress6: config.sip.publicAddress6,
    userAgent: config.sip.userAgent,
    maxMessageSize: config.sip.maxMessageSize,
    logger,
    observer,
  });
}
