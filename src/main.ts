#!/usr/bin/env node
/**
 * Process entry point (`npm start`, the `kallglot-gw` command): with arguments, the command line (src/cli) and
 * nothing else; without, the daemon: load config, build the gateway, start it, stop it cleanly on SIGINT/SIGTERM.
 * Exit codes: 0 ok, 1 runtime or start-up failure, 2 configuration (or usage) error, 3 DATA_DIR (or, with a
 * shared registry, this INSTANCE_ID) held by another live instance.
 */
import { runCli } from './cli/run.ts';
import { processEnvironment } from './config/environment.ts';
import { ConfigError, type GatewayConfig, loadConfig } from './config/load.ts';
import { createLogger, resolveLogFormat } from './logger.ts';
import type { Gateway as GatewayType } from './app.ts';
import { InstanceLockedError } from './registry/instance-lock.ts';
import { LeaseHeldError } from './registry/lease.ts';

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
  const logger = createLogger(
    config.log.level,
    undefined,
    resolveLogFormat(config.log.format, process.stdout.isTTY === true),
  );
  // Loaded here, not at the top: the daemon's modules take a second to load, which a plain `--help` must not pay.
  const { Gateway } = await import('./app.ts');
  const gateway: GatewayType = new Gateway(config, logger);
  // Before start(): SIGHUP's default action would kill a daemon that is still starting.
  let started = false;
  process.on('SIGHUP', () => {
    if (!started) return;
    gateway.reloadRouting('SIGHUP');
    // Certificate renewal (certbot's deploy hook, cert-manager) ends with a SIGHUP too.
    gateway.reloadCertificates('SIGHUP');
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
    process.exit(err instanceof InstanceLockedError || err instanceof LeaseHeldError ? 3 : 1);
  }
  started = true;

  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    // SIGTERM and POST /admin/drain drain (active calls may finish); SIGINT at a terminal hangs up at once.
    const drainMs = signal === 'SIGINT' ? 0 : config.calls.drainTimeoutSec * 1000;
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
  gateway.onDrainRequested = (trigger) => shutdown(trigger);
  process.on('uncaughtException', (err) => logger.fatal({ err }, 'uncaught exception'));
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
}

/** A command, not the daemon: runs it and exits with its code, before any config is loaded or port bound. */
async function commandLine(argv: string[]): Promise<void> {
  const code = await runCli({
    argv,
    env: processEnvironment(),
    stdout: (text) => void process.stdout.write(text),
    stderr: (text) => void process.stderr.write(text),
  });
  process.exit(code);
}

const args = process.argv.slice(2);
if (args.length > 0) void commandLine(args);
else void main();
