/**
 * Free-port discovery for tests that must tell another process (SIPp, the gateway) which port to use, so binding
 * port 0 in-process is not an option. There is an unavoidable window between closing our probe and the other
 * process binding; ports we already handed out are remembered so two callers in one worker never get the same one.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';

export type PortKind = 'udp' | 'tcp' | 'both';

const HOST = '127.0.0.1';
const issued = new Set<number>();

function bindTcp(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen({ port, host, exclusive: true }, () => {
      const { port: bound } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(bound));
    });
  });
}

function bindUdp(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    sock.once('error', (err) => {
      sock.close();
      reject(err);
    });
    sock.bind(port, host, () => {
      const bound = sock.address().port;
      sock.close(() => resolve(bound));
    });
  });
}

/** True when `port` can currently be bound on `host` (default 127.0.0.1) for the given kind(s). */
export async function isPortFree(port: number, kind: PortKind, host = HOST): Promise<boolean> {
  try {
    if (kind !== 'udp') await bindTcp(port, host);
    if (kind !== 'tcp') await bindUdp(port, host);
    return true;
  } catch {
    return false;
  }
}

/**
 * Where test ports come from: below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default), so no
 * outgoing connection of any process (undici, SIPp, PostgreSQL clients) can be given the port between our probe and
 * the daemon's bind, which is what port 0 allowed. Each vitest worker (VITEST_POOL_ID) and each process draws from its
 * own slice of the range, so two workers do not probe the same numbers at the same time either.
 */
const PORT_FLOOR = 10_000;
const SLICE = 1_000;

function ephemeralLow(): number {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) && low > PORT_FLOOR + SLICE ? low : 32_768;
  } catch {
    return 32_768;
  }
}

const slices = Math.max(1, Math.floor((ephemeralLow() - PORT_FLOOR) / SLICE));
const workerSlice = (Number(process.env.VITEST_POOL_ID ?? 0) * 7 + process.pid) % slices;
let nextInSlice = Math.floor(Math.random() * SLICE);

function candidatePort(): number {
  nextInSlice = (nextInSlice + 1) % SLICE;
  return PORT_FLOOR + workerSlice * SLICE + nextInSlice;
}

/**
 * A port free on `host` (default 127.0.0.1; `::` checks both families at once, dual-stack) for UDP, TCP or both
 * (SIPp and the gateway listen on one port number for both transports), outside the ephemeral range (above).
 */
export async function freePort(kind: PortKind = 'both', host = HOST): Promise<number> {
  for (let attempt = 0; attempt < SLICE; attempt++) {
    const port = candidatePort();
    if (issued.has(port)) continue;
    if (!(await isPortFree(port, kind, host))) continue;
    issued.add(port);
    return port;
  }
  throw new Error(`no free ${kind} port found on ${host} in ${SLICE} attempts`);
}

function procNetHasPort(file: string, port: number, tcpListenOnly: boolean): boolean {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return false;
  }
  for (const line of text.split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols.length < 4) continue;
    if (!cols[1]!.endsWith(`:${hexPort}`)) continue;
    if (tcpListenOnly && cols[3] !== '0A') continue; // 0A = TCP_LISTEN
    return true;
  }
  return false;
}

/**
 * Whether some process has bound `port` (UDP) or listens on it (TCP), read from /proc/net so we never bind the
 * port ourselves: a probe bind could make the process we are waiting for fail with EADDRINUSE.
 * Returns undefined where /proc/net is unavailable (non-Linux).
 */
export function isPortBound(port: number, kind: 'udp' | 'tcp'): boolean | undefined {
  if (!fs.existsSync('/proc/net/udp')) return undefined;
  const files = kind === 'udp' ? ['/proc/net/udp', '/proc/net/udp6'] : ['/proc/net/tcp', '/proc/net/tcp6'];
  return files.some((f) => procNetHasPort(f, port, kind === 'tcp'));
}
