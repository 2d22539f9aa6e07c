/** Pick the SIP engine adapter from config. The call logic only ever sees the SipEngine port. */
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { EmbeddedEngine } from './embedded/engine.ts';
import type { EngineTargetOptions } from './embedded/next-hops.ts';
import type { SipEngine } from './port.ts';

export interface SipTrafficObserver {
  sipMessage(direction: 'in' | 'out', methodOrStatus: string | number): void;
  parseError(): void;
  /** One outbound INVITE attempt on one resolved target ended (answered, timeout, unavailable, ...). */
  targetAttempt?(target: string, result: string): void;
}

export async function createEngine(
  config: GatewayConfig,
  logger: Logger,
  observer?: SipTrafficObserver,
): Promise<SipEngine> {
  if (config.sip.engine === 'drachtio') {
    const { DrachtioEngine } = await import('./drachtio/engine.ts');
    return new DrachtioEngine(config, logger, undefined, observer);
  }
  return new EmbeddedEngine({
    host: config.sip.host,
    port: config.sip.port,
    transports: config.sip.transports,
    publicAddress: config.sip.publicAddress,
    publicAddress6: config.sip.publicAddress6,
    userAgent: config.sip.userAgent,
    maxMessageSize: config.sip.maxMessageSize,
    tls: config.sip.transports.includes('tls')
      ? { port: config.sip.tlsPort, certFile: config.sip.tlsCertFile, keyFile: config.sip.tlsKeyFile }
      : undefined,
    tlsCaFile: config.telnyx.tlsCaFile || undefined,
    outboundTls:
      config.telnyx.sipTransport === 'tls' ||
      [config.telnyx.translatedUriTemplate, config.telnyx.directUriTemplate].some((t) => /^sips:/i.test(t)),
    keepAliveIntervalMs: config.sip.keepAliveIntervalSec * 1000,
    logger,
    observer,
    targets: targetOptions(config),
  });
}

/**
 * DNS servers, and OPTIONS probing of the Telnyx domain's targets. No probing behind TELNYX_OUTBOUND_PROXY: the proxy
 * is the only next hop, and it dispatches (and probes) on its own.
 */
function targetOptions(config: GatewayConfig): EngineTargetOptions {
  const { telnyx } = config;
  const probing = telnyx.probeIntervalSec > 0 && !telnyx.outboundProxy;
  return {
    dnsServers: config.sip.dnsServers,
    probeFailures: telnyx.probeFailures,
    probe: probing
      ? {
          uris: [`sip:${telnyx.sipDomain}`],
          transport: telnyx.sipTransport,
          intervalMs: telnyx.probeIntervalSec * 1000,
          timeoutMs: telnyx.targetTimeoutMs,
        }
      : undefined,
  };
}
