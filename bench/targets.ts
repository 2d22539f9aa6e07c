/**
 * The processes a benchmark run drives: the Kallglot double (src/kallglot/sandbox-main.ts, its own process so its
 * CPU is not the gateway's), the gateway daemon (src/main.ts, logs at info to a file as in production), and
 * Kamailio as the reference proxy. Each is started on free loopback ports and stopped by the caller.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../test/helpers/ports.ts';
import { createTestPki } from '../test/helpers/test-pki.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const NODE = path.join(ROOT, 'node_modules/.bin/node');
/** The V8 flags the daemon ships with (package.json `start`, Dockerfile, deploy/kallglot-gw.service): measured as run. */
export const SHIPPED_NODE_FLAGS = ['--max-semi-space-size=8'];

export interface Target {
  pid: number;
  stop(): Promise<void>;
}

async function stopChild(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 40_000); // a --cpu-prof profile is written on the way out
  await exited;
  clearTimeout(t);
}

export interface KallglotDouble extends Target {
  url: string;
  /** With TLS: the CA that signed the double's certificate. */
  caFile?: string;
}

/**
 * The Kallglot sandbox in its own process, answering every request after `latencyMs`; with `tls`, over HTTPS with
 * HTTP/2 offered by ALPN (the gateway then needs the CA: `caFile` for NODE_EXTRA_CA_CERTS).
 */
export async function startKallglotDouble(latencyMs: number, tls = false): Promise<KallglotDouble> {
  const args = ['src/kallglot/sandbox-main.ts', '--port', '0'];
  if (latencyMs > 0) args.push('--latency-ms', String(latencyMs));
  let caFile: string | undefined;
  let pki: ReturnType<typeof createTestPki> | undefined;
  if (tls) {
    pki = createTestPki();
    const ca = pki.ca('bench-ca');
    const server = pki.server(ca, 'kallglot-double', { names: ['localhost'], ips: ['127.0.0.1'] });
    args.push('--tls-cert', server.certFile, '--tls-key', server.keyFile);
    caFile = ca.certFile;
  }
  const child = spawn(NODE, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.setEncoding('utf8').on('data', (c: string) => {
      buf += c;
      const line = buf.split('\n')[0];
      if (buf.includes('\n') && line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`Kallglot double exited (${code})`)));
  });
  return {
    pid: child.pid!,
    url,
    ...(caFile !== undefined && { caFile }),
    stop: async () => {
      await stopChild(child, exited);
      pki?.remove();
    },
  };
}

export interface GatewayTarget extends Target {
  sipPort: number;
  httpPort: number;
  logFile: string;
  /** V8 heap in use, from the daemon's /metrics (nodejs_heap_size_used_bytes), MiB. */
  heapMiB(): Promise<number>;
  metrics(): Promise<string>;
}

export interface GatewayOptions {
  kallglotUrl: string;
  telnyxPort: number;
  env?: Record<string, string>;
  nodeOptions?: string;
}

export async function startGateway(o: GatewayOptions): Promise<GatewayTarget> {
  const [sipPort, httpPort] = [await freePort('both'), await freePort('tcp')];
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-bench-gw-'));
  const logFile = path.join(dir, 'gateway.log');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? os.tmpdir(),
    ...(o.nodeOptions ? { NODE_OPTIONS: o.nodeOptions } : {}),
    SIP_HOST: '127.0.0.1',
    SIP_PORT: String(sipPort),
    SIP_PUBLIC_ADDRESS: '127.0.0.1',
    SIP_TRANSPORTS: 'udp',
    HTTP_HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    DATA_DIR: path.join(dir, 'data'),
    LOG_LEVEL: 'info',
    LOG_FORMAT: 'json',
    KALLGLOT_API_URL: o.kallglotUrl,
    KALLGLOT_API_KEY: 'sk_test_bench',
    TELNYX_OUTBOUND_PROXY: `127.0.0.1:${o.telnyxPort}`,
    // The benchmark looks for the capacity: the static limits (sized for a small site) must not be what it finds.
    MAX_CALLS_PER_SECOND: '0',
    MAX_CONCURRENT_CALLS: '0',
    // Telnyx's own CPS limit, enforced per trunk before sending: the fake Telnyx has none to protect.
    TELNYX_MAX_CALLS_PER_SECOND: '0',
    // Stopping between systems: hang up at once (a call SIPp gave up on must not hold the stop for 30 s).
    DRAIN_TIMEOUT_SEC: '0',
    ...o.env,
  };
  const out = fs.openSync(logFile, 'a');
  const child = spawn(NODE, [...SHIPPED_NODE_FLAGS, 'src/main.ts'], { cwd: ROOT, env, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  const exited = new Promise((r) => child.once('exit', r));
  const base = `http://127.0.0.1:${httpPort}`;
  for (let waited = 0; ; waited += 100) {
    if (child.exitCode !== null)
      throw new Error(`gateway exited during start-up:\n${fs.readFileSync(logFile, 'utf8')}`);
    if (waited > 20_000) throw new Error('gateway did not start within 20 s');
    const ok = await fetch(`${base}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const metrics = async (): Promise<string> => (await fetch(`${base}/metrics`)).text();
  return {
    pid: child.pid!,
    sipPort,
    httpPort,
    logFile,
    metrics,
    heapMiB: async () =>
      Number(/^nodejs_heap_size_used_bytes\s+(\S+)/m.exec(await metrics())?.[1] ?? Number.NaN) / 1024 / 1024,
    stop: async () => {
      await stopChild(child, exited);
      fs.rmSync(path.join(dir, 'data'), { recursive: true, force: true });
    },
  };
}

const MODULES_DIRS = [
  '/usr/lib/x86_64-linux-gnu/kamailio/modules',
  '/usr/lib/aarch64-linux-gnu/kamailio/modules',
  '/usr/lib/kamailio/modules',
];

export function kamailioAvailable(): boolean {
  return spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0 && kamailioModules() !== undefined;
}

function kamailioModules(): string | undefined {
  return MODULES_DIRS.find((d) => fs.existsSync(path.join(d, 'tm.so')));
}

/**
 * Kamailio as a transaction-stateful, record-routing proxy from the UAC to `uasPort`, with `children` UDP workers
 * (one per core is its usual sizing) and nothing logged per request: the reference a B2BUA's cost is compared with.
 */
function kamailioConfig(port: number, uasPort: number, children: number, mpath: string): string {
  return `#!KAMAILIO
debug=1
log_stderror=yes
children=${children}
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:${port}
mpath="${mpath}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "textops.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"

request_route {
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not here"); exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  t_check_trans();
  record_route();
  $du = "sip:127.0.0.1:${uasPort}";
  t_relay();
}
`;
}

export async function startKamailio(uasPort: number, children: number): Promise<Target & { port: number }> {
  const mpath = kamailioModules();
  if (!mpath) throw new Error('kamailio modules not found');
  const port = await freePort('udp');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-bench-kamailio-'));
  const cfg = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfg, kamailioConfig(port, uasPort, children, mpath));
  const check = spawnSync('kamailio', ['-c', '-f', cfg], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`kamailio config refused:\n${check.stderr}`);
  // -DD: foreground; -E: log to stderr; -Y: a runtime dir of our own; -m/-M: shared/private memory in MB; -x/-X tlsf:
  // the allocator production configurations use (the packaged default, qm, is a debugging allocator: perf showed 57%
  // of Kamailio's CPU in qm_malloc, three times its CPU per call).
  const child = spawn(
    'kamailio',
    ['-DD', '-E', '-f', cfg, '-Y', dir, '-m', '256', '-M', '16', '-x', 'tlsf', '-X', 'tlsf'],
    {
      stdio: ['ignore', 'ignore', 'ignore'],
    },
  );
  const exited = new Promise((r) => child.once('exit', r));
  await new Promise((r) => setTimeout(r, 1000)); // binds and forks its workers well within this
  if (child.exitCode !== null) throw new Error('kamailio exited during start-up');
  return {
    pid: child.pid!,
    port,
    stop: async () => {
      await stopChild(child, exited);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
