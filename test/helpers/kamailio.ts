/**
 * A real Kamailio (Debian package `kamailio`) as a transaction-stateful, record-routing proxy for end-to-end tests.
 * It sits in front of the gateway for the PBX (INVITEs from anywhere else go to the gateway) and in front of the
 * Telnyx double for the gateway (INVITEs from the gateway's SIP port go to `telnyxPort`). In-dialog requests follow
 * the Route set (loose_route), exactly as behind a customer's SBC or Telnyx's own proxies.
 * `stop()` kills it; every started Kamailio is also killed when the test process exits.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODULES_DIRS = [
  '/usr/lib/x86_64-linux-gnu/kamailio/modules',
  '/usr/lib/aarch64-linux-gnu/kamailio/modules',
  '/usr/lib/kamailio/modules',
];
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of running) p.kill('SIGKILL');
});

export function kamailioAvailable(): boolean {
  return spawnSync('kamailio', ['-v'], { stdio: 'ignore' }).status === 0;
}

export interface KamailioProxy {
  port: number;
  /** Kamailio's log (stderr), for assertion messages. */
  log(): string;
  stop(): Promise<void>;
}

export interface KamailioOptions {
  port: number;
  gatewayPort: number;
  telnyxPort: number;
}

function config(o: KamailioOptions, mpath: string): string {
  return `#!KAMAILIO
debug=2
log_stderror=yes
children=2
disable_tcp=yes
auto_aliases=no
listen=udp:127.0.0.1:${o.port}
mpath="${mpath}/"
loadmodule "tm.so"
loadmodule "sl.so"
loadmodule "rr.so"
loadmodule "pv.so"
loadmodule "maxfwd.so"
loadmodule "siputils.so"
loadmodule "xlog.so"
loadmodule "textops.so"

request_route {
  xlog("L_INFO", "REQ $rm $ru from $si:$sp\\n");
  if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
  if (has_totag()) {
    if (loose_route()) { t_relay(); exit; }
    if (is_method("ACK")) { if (t_check_trans()) { t_relay(); } exit; }
    sl_send_reply("404", "Not here"); exit;
  }
  if (is_method("CANCEL")) { if (t_check_trans()) { t_relay(); } exit; }
  t_check_trans();
  record_route();
  if ($sp == ${o.gatewayPort}) { $du = "sip:127.0.0.1:${o.telnyxPort}"; } else { $du = "sip:127.0.0.1:${o.gatewayPort}"; }
  t_relay();
}
`;
}

/** Where the Debian package put Kamailio's modules (the architecture is part of the path). */
export function kamailioModulesDir(): string {
  const mpath = MODULES_DIRS.find((d) => fs.existsSync(path.join(d, 'tm.so')));
  if (!mpath) throw new Error('kamailio modules not found (apt-get install -y kamailio)');
  return mpath;
}

export async function startKamailio(o: KamailioOptions): Promise<KamailioProxy> {
  const mpath = kamailioModulesDir();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-kamailio-'));
  const cfg = path.join(dir, 'kamailio.cfg');
  fs.writeFileSync(cfg, config(o, mpath));
  const check = spawnSync('kamailio', ['-c', '-f', cfg], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`kamailio config refused:\n${check.stderr}`);
  // -DD: stay in the foreground; -E: log to stderr; -Y: runtime dir of our own; small memory for a test.
  const child = spawn('kamailio', ['-DD', '-E', '-f', cfg, '-Y', dir, '-m', '64', '-M', '8'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  running.add(child);
  let log = '';
  child.stderr?.setEncoding('utf8').on('data', (c: string) => {
    log += c;
  });
  const exited = new Promise<void>((res) => child.on('exit', () => res()));
  // Ready once its UDP socket is bound (a bind of ours on the same address then fails); or fail with its log.
  const deadline = Date.now() + 10_000;
  while (!(await udpPortTaken(o.port))) {
    if (child.exitCode !== null) throw new Error(`kamailio exited during start-up:\n${log}`);
    if (Date.now() > deadline) throw new Error(`kamailio did not start within 10 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200)); // its workers finish forking
  return {
    port: o.port,
    log: () => log,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      running.delete(child);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True once something holds UDP `port` on `host` (a bind of ours there fails). */
export function udpPortTaken(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    sock.once('error', () => resolve(true));
    sock.bind(port, host, () => sock.close(() => resolve(false)));
  });
}
