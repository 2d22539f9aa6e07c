/** Pick the SIP engine adapter from config. The call logic only ever sees the SipEngine port. */
import type { GatewayConfig } from '../config/load.ts';
import { allTrunks } from '../config/trunks.ts';
import type { Logger } from '../logger.ts';
import { EmbeddedEngine } from './embedded/engine.ts';
import type { EngineTargetOptions } from './embedded/next-hops.ts';
import type { ProbedUri } from './embedded/prober.ts';
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
    targets: engineTargetOptions(config),
  });
}

/**
 * DNS servers, and OPTIONS probing of every trunk's domain (the default trunk's and those of `telnyx.trunks`), each
 * with the trunk's transport, so a dead SBC of any trunk leaves the rotation before a call meets it. Not for a trunk
 * behind an outbound proxy: the proxy is that trunk's only next hop, and it dispatches (and probes) on its own. A
 * domain reached by two trunks over one transport is probed once.
 */
export function engineTargetOptions(config: GatewayConfig): EngineTargetOptions {
  const { telnyx } = config;
  const probed = new Map<string, ProbedUri>();
  for (const trunk of allTrunks(telnyx)) {
    if (trunk.outboundProxy) continue;
    const uri = `sip:${trunk.sipDomain}`;
    probed.set(`${trunk.sipTransport} ${uri}`, { uri, transport: trunk.sipTransport });
  }
  const probing = telnyx.probeIntervalSec > 0 && probed.size > 0;
  return {
    dnsServers: config.sip.dnsServers,
    probeFailures: telnyx.probeFailures,
    probe: probing
      ? {
          uris: [...probed.values()],
          intervalMs: telnyx.probeIntervalSec * 1000,
          timeoutMs: telnyx.targetTimeoutMs,
        }
      : undefined,
  };
}
