/**
 * Runs the Kallglot sandbox as its own process, for tests that drive a daemon in another process:
 *   node src/kallglot/sandbox-main.ts --port 0 [--host 127.0.0.1] [--api-key sk_test_x] [--credits N]
 * Prints one JSON line `{"url":"http://127.0.0.1:PORT/v1","port":PORT}` to stdout once listening; stops on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { KallglotSandbox } from './sandbox.ts';
import type { KallglotSandboxOptions } from './sandbox.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'api-key': { type: 'string' },
    credits: { type: 'string' },
  },
  strict: true,
});

const port = Number(values.port);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  process.stderr.write(`invalid --port ${values.port}\n`);
  process.exit(2);
}

const opts: KallglotSandboxOptions = {};
if (values['api-key'] !== undefined) opts.apiKey = values['api-key'];
if (values.credits !== undefined) opts.credits = Number(values.credits);

const sandbox = new KallglotSandbox(opts);
const { url } = await sandbox.start(port, values.host);
process.stdout.write(`${JSON.stringify({ url, port: new URL(url).port === '' ? port : Number(new URL(url).port) })}\n`);

let stopping = false;
const shutdown = (): void => {
  if (stopping) return;
  stopping = true;
  sandbox.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
