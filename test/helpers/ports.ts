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
 * A port free on `host` (default 127.0.0.1; `::` checks both families at once, dual-stack) for UDP, TCP or both.
 * For 'both' the OS picks a TCP port and we retry until the same number is also free for UDP (SIPp and the gateway
 * listen on one port number for both transports).
 */
export async function freePort(kind: PortKind = 'both', host = HOST): Promise<number> {
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = kind === 'udp' ? await bindUdp(0, host) : await bindTcp(0, host);
    if (issued.has(port)) continue;
    if (kind === 'both' && !(await isPortFree(port, 'udp', host))) continue;
    issued.add(port);
    return port;
  }
  throw new Error(`no free ${kind} port found on ${host} after 100 attempts`);
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
