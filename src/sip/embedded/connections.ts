/**
 * The connection-oriented half of the transport layer (RFC 3261 §18.3): one pool of TCP and TLS connections, in
 * either direction, keyed by transport and peer address. A message goes over the connection already open to its
 * destination, whoever opened it (a response on the connection its request came on, a request to Telnyx on the
 * connection opened for the previous call), else over a new one.
 *
 * Keep-alives (RFC 5626 §3.5.1, §4.4.1): connections we opened send a CRLFCRLF "ping" after each idle interval, so a
 * NAT or firewall between us and Telnyx never drops the flow an in-dialog BYE will need, and a dead peer shows up as
 * a write error instead of a lost request. Connections we accepted answer each ping with a CRLF "pong". A missing
 * pong is not treated as a failure: a peer without RFC 5626 support just skips the CRLFs, as RFC 3261 §7.5 allows.
 */
import net from 'node:net';
import type tls from 'node:tls';
import type { Logger } from '../../logger.ts';
import { stripBrackets } from '../syntax/uri.ts';
import { StreamFramer } from './framer.ts';
import type { SipEndpoint, SipMessage } from './message.ts';
import { certificateRefusal, type TlsClient, tlsServerName } from './tls.ts';
import { normalizeAddress } from './via.ts';

const PING = Buffer.from('\r\n\r\n');
const PONG = Buffer.from('\r\n');

export type StreamTransport = 'tcp' | 'tls';

/** A message on its way out, with its bytes. */
export interface Pending {
  msg: SipMessage;
  data: Buffer;
  dest: SipEndpoint;
}

interface Connection {
  key: string;
  socket: net.Socket;
  framer: StreamFramer;
  connected: boolean;
  /** We opened it: it sends pings. We accepted it: it answers them. */
  outbound: boolean;
  /** Messages waiting for an outbound connect (and TLS handshake) to finish. */
  queue: Pending[];
  remote: SipEndpoint;
  /** TLS we opened: the name the peer's certificate was checked against. */
  serverName?: string;
  lastError?: Error;
  /** Fires after an idle keep-alive interval; refreshed by every byte in or out. */
  keepAlive?: NodeJS.Timeout;
  /** Gives up a connection we opened that does not connect in time (CONNECT_TIMEOUT_MS). */
  connectTimer?: NodeJS.Timeout;
}

export interface ConnectionPoolDeps {
  logger: Logger;
  maxMessageSize: number;
  /** Close connections with no traffic for this long; keep-alive pings count as traffic. */
  idleMs: number;
  /** Ping interval on idle connections we opened; 0: none. */
  keepAliveIntervalMs: number;
  /** How long a connection we open may take to connect (and finish its TLS handshake); default CONNECT_TIMEOUT_MS. */
  connectTimeoutMs?: number;
  tlsClient: TlsClient;
  message(data: Buffer, source: SipEndpoint): void;
  framingError(error: string, source: SipEndpoint): void;
  sendFailed(item: Pending, err: unknown): void;
  sent(): void;
  /** Runs socket callbacks so an exception never escapes into the event loop. */
  safe(fn: () => void): void;
}

/**
 * A connection we open that is neither connected nor refused after this long is given up: the messages queued on it
 * fail (the transaction tries the next target) and the next message opens a new one. Without it, an SBC that accepts
 * TCP but never completes the TLS handshake would hold every message for it until the idle timeout. The transaction's
 * own timers still decide when a call gives up; this only bounds how long a dead connection is kept as "the" one.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

function connKey(transport: SipEndpoint['transport'], address: string, port: number): string {
  return `${transport}|${normalizeAddress(stripBrackets(address)).toLowerCase()}|${port}`;
}

function peerText(remote: SipEndpoint): string {
  return remote.address.includes(':') ? `[${remote.address}]:${remote.port}` : `${remote.address}:${remote.port}`;
}

export class ConnectionPool {
  readonly #deps: ConnectionPoolDeps;
  readonly #connections = new Map<string, Connection>();
  readonly #sockets = new Set<net.Socket>();
  /**
   * The name each TLS peer's certificate was verified under, for reconnecting to it by address alone (a dialog's
   * Contact is usually an IP): the name stays the one checked first. A handful of entries, one per Telnyx SBC.
   */
  readonly #verifiedNames = new Map<string, string>();
  #stopped = false;

  constructor(deps: ConnectionPoolDeps) {
    this.#deps = deps;
  }

  /** A connection a peer opened (TCP accept, or TLS after its handshake): usable for sending at once. */
  accept(socket: net.Socket, transport: StreamTransport): void {
    if (this.#stopped || !socket.remoteAddress || socket.remotePort === undefined) {
      socket.destroy();
      return;
    }
    const remote: SipEndpoint = { transport, address: normalizeAddress(socket.remoteAddress), port: socket.remotePort };
    this.#track(socket, remote, false);
  }

  send(item: Pending): void {
    const { dest } = item;
    const key = connKey(dest.transport, dest.address, dest.port);
    let conn = this.#connections.get(key);
    if (conn?.socket.destroyed) {
      this.#connections.delete(key);
      conn = undefined;
    }
    if (!conn) conn = this.#open(item, key);
    if (!conn.connected) {
      conn.queue.push(item);
      return;
    }
    this.#write(conn, item);
  }

  closeAll(): void {
    this.#stopped = true;
    for (const socket of this.#sockets) socket.destroy();
    this.#sockets.clear();
    this.#connections.clear();
  }

  #open(item: Pending, key: string): Connection {
    const conn = this.#connect(item, key);
    const limitMs = this.#deps.connectTimeoutMs ?? CONNECT_TIMEOUT_MS;
    const timer = setTimeout(() => {
      if (conn.connected || conn.socket.destroyed) return;
      const what = conn.remote.transport === 'tls' ? 'connect and TLS handshake' : 'connect';
      conn.lastError = new Error(`${what} to ${peerText(conn.remote)} did not complete within ${limitMs} ms`);
      this.#deps.logger.warn({ peer: peerText(conn.remote), limitMs }, `SIP ${what} timed out`);
      conn.socket.destroy();
    }, limitMs);
    conn.socket.once('close', () => clearTimeout(timer));
    conn.connectTimer = timer;
    return conn;
  }

  #connect(item: Pending, key: string): Connection {
    const { dest } = item;
    const host = stripBrackets(dest.address);
    const remote: SipEndpoint = { transport: dest.transport, address: normalizeAddress(host), port: dest.port };
    if (dest.transport !== 'tls') {
      const conn = this.#track(net.connect({ host, port: dest.port }), remote, true);
      conn.socket.once('connect', () => this.#ready(conn));
      return conn;
    }
    const serverName = tlsServerName(item.msg, dest) ?? this.#verifiedNames.get(key);
    const socket: tls.TLSSocket = this.#deps.tlsClient.connect(host, dest.port, serverName);
    const conn = this.#track(socket, remote, true);
    conn.serverName = serverName;
    socket.once('secureConnect', () => {
      if (serverName && !this.#verifiedNames.has(key)) this.#verifiedNames.set(key, serverName);
      this.#ready(conn);
    });
    return conn;
  }

  #ready(conn: Connection): void {
    clearTimeout(conn.connectTimer);
    conn.connected = true;
    this.#startKeepAlive(conn);
    const queued = conn.queue;
    conn.queue = [];
    for (const item of queued) this.#write(conn, item);
  }

  /** Register a socket: framing, idle timeout, cleanup. */
  #track(socket: net.Socket, remote: SipEndpoint, outbound: boolean): Connection {
    const deps = this.#deps;
    const conn: Connection = {
      key: connKey(remote.transport, remote.address, remote.port),
      socket,
      framer: new StreamFramer({ maxMessageSize: deps.maxMessageSize }),
      connected: !outbound,
      outbound,
      queue: [],
      remote,
    };
    this.#connections.set(conn.key, conn);
    this.#sockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(deps.idleMs, () => {
      deps.logger.debug({ peer: conn.key }, 'closing idle SIP connection');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => deps.safe(() => this.#handleStream(conn, chunk)));
    socket.on('error', (err) => {
      conn.lastError = err;
      this.#logError(conn, err);
    });
    socket.on('close', () => {
      clearTimeout(conn.keepAlive);
      this.#sockets.delete(socket);
      if (this.#connections.get(conn.key) === conn) this.#connections.delete(conn.key);
      const lost = conn.queue;
      conn.queue = [];
      for (const item of lost)
        deps.sendFailed(item, conn.lastError ?? new Error('connection closed before it was established'));
    });
    return conn;
  }

  /** A refused certificate gets its own line, saying whose and why: the one thing an operator must act on. */
  #logError(conn: Connection, err: Error): void {
    const peer = peerText(conn.remote);
    const refused = conn.remote.transport === 'tls' && !conn.connected ? certificateRefusal(err) : undefined;
    if (refused) {
      const who = conn.serverName ? `${conn.serverName} (${peer})` : peer;
      this.#deps.logger.error(
        { peer, serverName: conn.serverName, code: (err as NodeJS.ErrnoException).code, reason: refused },
        `TLS certificate of ${who} refused: ${refused}`,
      );
      return;
    }
    this.#deps.logger.warn({ err, peer }, `SIP ${conn.remote.transport.toUpperCase()} connection error`);
  }

  #handleStream(conn: Connection, chunk: Buffer): void {
    conn.keepAlive?.refresh();
    for (const result of conn.framer.push(chunk)) {
      if (result.ok) {
        this.#deps.message(result.data, conn.remote);
        continue;
      }
      this.#deps.logger.warn({ error: result.error, peer: conn.key }, 'SIP stream framing error');
      this.#deps.framingError(result.error, conn.remote);
      if (result.fatal) {
        conn.socket.destroy();
        return;
      }
    }
    const pings = conn.framer.takePings();
    if (conn.outbound || conn.socket.destroyed) return;
    for (let i = 0; i < pings; i++) conn.socket.write(PONG);
  }

  #startKeepAlive(conn: Connection): void {
    const every = this.#deps.keepAliveIntervalMs;
    if (!conn.outbound || every <= 0) return;
    conn.keepAlive = setTimeout(() => {
      if (conn.socket.destroyed) return;
      conn.socket.write(PING);
      conn.keepAlive?.refresh();
    }, every);
    // A kept-alive flow to Telnyx must not keep the process alive on its own.
    conn.keepAlive.unref();
  }

  #write(conn: Connection, item: Pending): void {
    try {
      conn.socket.write(item.data, (err) => {
        if (err) this.#deps.sendFailed(item, err);
      });
      conn.keepAlive?.refresh();
      this.#deps.sent();
    } catch (err) {
      this.#deps.sendFailed(item, err);
    }
  }
}
