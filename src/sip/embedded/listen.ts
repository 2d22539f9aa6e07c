/**
 * The listening sockets of the transport layer (RFC 3261 §18): one UDP socket and one TCP server on one address
 * (and the TLS server of tls.ts, on its own port).
 *
 * `::` listens dual-stack: IPv4 peers reach the same sockets and show up IPv4-mapped (`::ffff:192.0.2.1`, which the
 * transport normalises to `192.0.2.1`). The TCP server is dual-stack whatever the system default (libuv clears
 * IPV6_V6ONLY); the UDP socket follows the system default (Linux: net.ipv6.bindv6only, 0 unless changed).
 * A machine without IPv6 (kernel booted with ipv6.disable=1) refuses `::`; the transport then listens on 0.0.0.0,
 * the part of "every address" the machine has (ipv6Unavailable below).
 */
import dgram from 'node:dgram';
import dns from 'node:dns';
import net from 'node:net';
import { stripBrackets } from '../syntax/uri.ts';

/** Which peers a socket can exchange datagrams with: 4, 6, or 0 for both (dual-stack `::`). */
export type IpFamily = 0 | 4 | 6;

/** Errors binding `::` that mean "no IPv6 on this machine" rather than "this port is taken". */
const IPV6_UNAVAILABLE = new Set(['EAFNOSUPPORT', 'EADDRNOTAVAIL', 'EPROTONOSUPPORT']);

/** True for the IPv6 unspecified address in any spelling (`::`, `[::]`, `0:0:0:0:0:0:0:0`). */
export function isUnspecifiedIPv6(host: string): boolean {
  const bare = stripBrackets(host);
  return net.isIPv6(bare) && /^[0:]+$/.test(bare);
}

/** Binding `host` failed only because this machine has no IPv6: worth retrying on 0.0.0.0. */
export function ipv6Unavailable(host: string, err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return isUnspecifiedIPv6(host) && code !== undefined && IPV6_UNAVAILABLE.has(code);
}

/** The peers sockets bound on `address` can reach: a specific IPv6 address or 0.0.0.0 reach one family only. */
export function familyOf(address: string): IpFamily {
  if (isUnspecifiedIPv6(address)) return 0;
  return net.isIPv6(stripBrackets(address)) ? 6 : 4;
}

/**
 * The address to give socket.send(): a udp6 socket refuses an IPv4 address (EINVAL) but reaches the peer written
 * IPv4-mapped; a udp4 socket wants the plain IPv4 form.
 */
export function udpSendAddress(address: string, socketFamily: 4 | 6): string {
  const bare = stripBrackets(address);
  if (socketFamily === 6) return net.isIPv4(bare) ? `::ffff:${bare}` : bare;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(bare);
  return mapped ? (mapped[1] ?? bare) : bare;
}

export interface UdpHandlers {
  message(data: Buffer, rinfo: dgram.RemoteInfo): void;
  /** Errors after the bind succeeded. */
  error(err: Error): void;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;

/**
 * The socket's lookup: dgram looks up every destination of an unconnected socket before sending, an IP address too,
 * and dns.lookup answers an address on the next tick, so each datagram cost a tick (and the send's closures lived
 * until then). The transport sends to addresses only (RFC 3263 resolution happens above it): an address is
 * answered at once and the datagram leaves within send(). Anything else still goes to dns.lookup.
 */
export function lookupAddress(
  hostname: string,
  options: number | dns.LookupOneOptions, // dgram passes the socket's family, 4 or 6 (the types say options)
  callback: LookupCallback,
): void {
  const version = net.isIP(hostname);
  if (version !== 0) callback(null, hostname, version);
  else if (typeof options === 'number') dns.lookup(hostname, options, callback);
  else dns.lookup(hostname, options, callback);
}

/** Bind a UDP socket; rejects with the bind error (the socket is closed then). */
export function bindUdp(host: string, port: number, handlers: UdpHandlers): Promise<dgram.Socket> {
  const address = stripBrackets(host);
  return new Promise((resolve, reject) => {
    // ipv6Only false is the default; written out because dual-stack on `::` is the point.
    const lookup = lookupAddress;
    const socket = net.isIPv6(address)
      ? dgram.createSocket({ type: 'udp6', ipv6Only: false, lookup })
      : dgram.createSocket({ type: 'udp4', lookup });
    const onError = (err: Error): void => {
      socket.close();
      reject(err);
    };
    socket.once('error', onError);
    socket.on('message', handlers.message);
    socket.bind({ address, port }, () => {
      socket.off('error', onError);
      socket.on('error', handlers.error);
      resolve(socket);
    });
  });
}

/** Listen with a TCP server; rejects with the listen error. */
export function listenTcp(
  host: string,
  port: number,
  maxConnections: number,
  onConnection: (socket: net.Socket) => void,
  onError: (err: Error) => void,
): Promise<net.Server> {
  const server = net.createServer(onConnection);
  server.maxConnections = maxConnections;
  return listenOn(server, host, port, onError);
}

/** Listen with a server already built (TCP or TLS); rejects with the listen error. */
export function listenOn<S extends net.Server>(
  server: S,
  host: string,
  port: number,
  onError: (err: Error) => void,
): Promise<S> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: stripBrackets(host), port }, () => {
      server.off('error', reject);
      server.on('error', onError);
      resolve(server);
    });
  });
}
