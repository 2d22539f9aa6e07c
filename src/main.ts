/**
 * Daemon entry point: wiring only. Load config, build the gateway, start it, stop it cleanly on SIGINT/SIGTERM.
 */
import { ConfigError, type GatewayConfig, loadConfig } from './config/load.ts';
import { createLogger } from './logger.ts';
import { Gateway } from './app.ts';
import { InstanceLockedError } from './registry/instance-lock.ts';

async function main(): Promise<void> {
  let config: GatewayConfig;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`kallglot-sip-gateway: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.log.level);
  const gateway = new Gateway(config, logger);
  // Before start(): SIGHUP's default action would kill a daemon that is still starting.
  let started = false;
  process.on('SIGHUP', () => {
    if (started) gateway.reloadRouting('SIGHUP');
  });
  try {
    await gateway.start();
  } catch (err) {
    logger.fatal({ err }, 'start-up failed');
    // Also one plain line on stderr: what an operator reads first when the service does not come up.
    process.stderr.write(
      `kallglot-sip-gateway: start-up failed: ${err instanceof Error ? err.message : String(err)}\n`,
    );
    await gateway.stop().catch(() => undefined);
    process.exit(err instanceof InstanceLockedError ? 3 : 1);
  }
  started = true;

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // SIGTERM drains (active calls may finish); SIGINT at a terminal hangs up at once.
    const drainMs = signal === 'SIGTERM' ? config.calls.drainTimeoutSec * 1000 : 0;
    gateway
      .stop(drainMs)
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('uncaughtException', (err) => logger.fatal({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

void main();
