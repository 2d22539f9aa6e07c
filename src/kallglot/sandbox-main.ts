/**
 * Runs the Kallglot sandbox as its own process, for tests that drive a daemon in another process:
 *   node src/kallglot/sandbox-main.ts --port 0 [--host 127.0.0.1] [--api-key sk_test_x] [--credits N] [--latency-ms N]
 * `--latency-ms` delays every answer (a remote API's round trip: `npm run bench -- --kallglot-latency 300`).
 * `--tls-cert FILE --tls-key FILE` serve HTTPS, HTTP/2 and HTTP/1.1 by ALPN (`npm run bench -- --kallglot-http2`).
 * Prints one JSON line `{"url":"http://127.0.0.1:PORT/v1","port":PORT}` to stdout once listening; stops on SIGTERM/SIGINT.
 */
import fs from 'node:fs';
import { parseArgs } from 'node:util';
import { KallglotSandbox } from './sandbox.ts';
import type { KallglotSandboxOptions } from './sandbox.ts';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
    'api-key': { type: 'string' },
    credits: { type: 'string' },
    'latency-ms': { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
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
if (values['tls-cert'] !== undefined && values['tls-key'] !== undefined) {
  opts.tls = { cert: fs.readFileSync(values['tls-cert'], 'utf8'), key: fs.readFileSync(values['tls-key'], 'utf8') };
}

const latencyMs = Number(values['latency-ms'] ?? 0);
if (!Number.isFinite(latencyMs) || latencyMs < 0) {
  process.stderr.write(`invalid --latency-ms ${values['latency-ms']}\n`);
  process.exit(2);
}

const sandbox = new KallglotSandbox(opts);
if (latencyMs > 0) sandbox.injectFailure({ endpoint: 'any', latencyMs });
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
