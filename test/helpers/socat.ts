/**
 * socat as a TLS relay for end-to-end tests. Debian's SIPp is built without TLS, so a SIPp that must speak TLS sits
 * behind socat and speaks TCP itself:
 * - `tlsTerminator`: socat listens for TLS with a server certificate and relays each connection over TCP to SIPp
 *   (SIPp then plays a TLS server, e.g. Telnyx's SBC on 5061);
 * - `tlsOriginator`: socat listens for TCP and relays each connection over TLS, verifying the server's certificate
 *   against a CA file (SIPp then plays a TLS client, e.g. a PBX).
 * With `fork`, every accepted connection gets its own socat child and its own connection onward, so the number of
 * connections accepted (counted from socat's -d -d log) is the number of connections the client opened.
 */
import { spawn } from 'node:child_process';
import { afterAll } from 'vitest';
import { isPortBound } from './ports.ts';

export interface SocatRun {
  readonly pid: number;
  /** Resolves once socat listens (seen in /proc/net). */
  readonly ready: Promise<void>;
  /** Connections socat accepted so far. */
  accepted(): number;
  stderr(): string;
  stop(): Promise<void>;
}

const running = new Set<SocatRun>();

try {
  afterAll(async () => {
    await Promise.all([...running].map((r) => r.stop()));
  });
} catch {
  // imported outside a vitest run: the exit hook below still applies
}
process.once('exit', () => {
  for (const r of running) killGroup(r.pid, 'SIGKILL');
});

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function runSocat(listenPort: number, args: string[]): SocatRun {
  // detached: own process group, so stop() also ends the children socat forked per connection.
  const child = spawn('socat', ['-d', '-d', ...args], { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  if (child.pid === undefined) throw new Error('could not spawn socat');
  const pid = child.pid;
  let stderr = '';
  let exited = false;
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr = (stderr + c).slice(-200_000);
  });
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => {
      exited = true;
      resolve();
    });
  });
  const ready = (async () => {
    for (let waited = 0; ; waited += 20) {
      if (exited) throw new Error(`socat exited before listening on ${listenPort}: ${stderr.slice(-2000)}`);
      const bound = isPortBound(listenPort, 'tcp');
      // Without /proc/net there is nothing to observe; socat listens within a few ms of starting.
      if (bound === true || (bound === undefined && waited >= 500)) return;
      if (waited > 10_000) throw new Error(`socat did not listen on ${listenPort} within 10 s`);
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  ready.catch(() => {});
  const run: SocatRun = {
    pid,
    ready,
    accepted: () => (stderr.match(/accepting connection from/g) ?? []).length,
    stderr: () => stderr,
    stop: async () => {
      running.delete(run);
      if (exited) return;
      killGroup(pid, 'SIGTERM');
      const grace = setTimeout(() => killGroup(pid, 'SIGKILL'), 2000);
      await closed;
      clearTimeout(grace);
    },
  };
  running.add(run);
  return run;
}

/** TLS in on 127.0.0.1:listenPort (with this certificate, no client certificate asked), TCP out to 127.0.0.1:target. */
export function tlsTerminator(o: { listenPort: number; target: number; certFile: string; keyFile: string }): SocatRun {
  return runSocat(o.listenPort, [
    `OPENSSL-LISTEN:${o.listenPort},bind=127.0.0.1,reuseaddr,fork,cert=${o.certFile},key=${o.keyFile},verify=0`,
    `TCP:127.0.0.1:${o.target}`,
  ]);
}

/** TCP in on 127.0.0.1:listenPort, TLS out to 127.0.0.1:target, the server's certificate checked for `serverName`. */
export function tlsOriginator(o: { listenPort: number; target: number; caFile: string; serverName: string }): SocatRun {
  return runSocat(o.listenPort, [
    `TCP-LISTEN:${o.listenPort},bind=127.0.0.1,reuseaddr,fork`,
    `OPENSSL:127.0.0.1:${o.target},cafile=${o.caFile},commonname=${o.serverName},verify=1`,
  ]);
}
