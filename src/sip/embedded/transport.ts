/**
 * SIP transport layer (RFC 3261 §18) over UDP and TCP: binds the listening sockets, frames and parses what arrives,
 * stamps received/rport on incoming requests (§18.2.1, RFC 3581) and sends messages, reusing TCP connections in
 * either direction (a response goes back on the connection its request came on).
 */
import type dgram from 'node:dgram';
import net from 'node:net';
import { silentLogger, type Logger } from '../../logger.ts';
import { bindUdp, familyOf, type IpFamily, ipv6Unavailable, listenTcp, udpSendAddress } from './listen.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipTransportName } from './message.ts';
import { parseMessage, StreamFramer } from './parser.ts';
import { serializeMessage } from './serialize.ts';
import { normalizeAddress, stampReceived } from './via.ts';
import { stripBrackets } from '../syntax/uri.ts';

/** Inbound TCP connections accepted at once; PBX trunks use a handful. */
const MAX_INBOUND_TCP_CONNECTIONS = 4096;

export { responseDestination } from './transaction-helpers.ts';

export interface TransportLayerOptions {
  host: string;
  port: number;
  transports: SipTransportName[];
  maxMessageSize?: number;
  /** Close TCP connections with no traffic for this long (default 5 min). */
  tcpIdleTimeoutMs?: number;
  logger?: Logger;
}

export interface TransportCounters {
  received: number;
  sent: number;
  parseErrors: number;
  dropped: number;
}

type MessageHandler = (msg: SipMessage, source: SipEndpoint) => void;
type ParseErrorHandler = (error: string, partial: SipRequest | undefined, source: SipEndpoint) => void;
type SendErrorHandler = (error: Error, msg: SipMessage, dest: SipEndpoint) => void;

interface Pending {
  msg: SipMessage;
  data: Buffer;
  dest: SipEndpoint;
}

interface Connection {
  key: string;
  socket: net.Socket;
  framer: StreamFramer;
  connected: boolean;
  /** Messages waiting for an outbound connect to finish. */
  queue: Pending[];
  remote: SipEndpoint;
  lastError?: Error;
}

const DEFAULT_IDLE_MS = 5 * 60_000;
/** Retries when the UDP port picked for port 0 turns out to be taken on TCP. */
const SAME_PORT_ATTEMPTS = 5;

function connKey(address: string, port: number): string {
  return `${normalizeAddress(stripBrackets(address)).toLowerCase()}|${port}`;
}

export class TransportLayer {
  readonly counters: TransportCounters = { received: 0, sent: 0, parseErrors: 0, dropped: 0 };
  readonly #opts: TransportLayerOptions;
  readonly #logger: Logger;
  readonly #maxSize: number;
  readonly #idleMs: number;
  #udp: dgram.Socket | undefined;
  #udpFamily: 4 | 6 = 4;
  #server: net.Server | undefined;
  readonly #connections = new Map<string, Connection>();
  readonly #allSockets = new Set<net.Socket>();
  readonly #messageHandlers: MessageHandler[] = [];
  readonly #parseErrorHandlers: ParseErrorHandler[] = [];
  readonly #sendErrorHandlers: SendErrorHandler[] = [];
  #boundPort = 0;
  #boundAddress: string;
  #stopped = false;

  constructor(opts: TransportLayerOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? silentLogger();
    this.#maxSize = opts.maxMessageSize ?? 65535;
    this.#idleMs = opts.tcpIdleTimeoutMs ?? DEFAULT_IDLE_MS;
    this.#boundAddress = opts.host;
  }

  get localPort(): number {
    return this.#boundPort;
  }

  get localAddress(): string {
    return this.#boundAddress;
  }

  /** The peers the listening sockets reach: 0 for both families (dual-stack `::`), else 4 or 6. */
  get family(): IpFamily {
    return familyOf(this.#boundAddress);
  }

  onMessage(handler: MessageHandler): void {
    this.#messageHandlers.push(handler);
  }

  /** Unparseable input; `partial` is set when enough survived to answer 400 (the layer above does that). */
  onParseError(handler: ParseErrorHandler): void {
    this.#parseErrorHandlers.push(handler);
  }

  /** A message could not be sent (TCP connect/write failure, UDP send error); always reported asynchronously. */
  onSendError(handler: SendErrorHandler): void {
    this.#sendErrorHandlers.push(handler);
  }

  /** `::` (dual-stack, the default) falls back to 0.0.0.0 on a machine without IPv6; other addresses fail as given. */
  async start(): Promise<void> {
    const { host } = this.#opts;
    try {
      await this.#listen(host);
    } catch (err) {
      if (!ipv6Unavailable(host, err)) throw err;
      this.#logger.warn(
        { code: (err as NodeJS.ErrnoException).code, host, fallback: '0.0.0.0' },
        'IPv6 is not available on this machine: SIP listens on 0.0.0.0 (IPv4 only)',
      );
      await this.#listen('0.0.0.0');
    }
  }

  async #listen(host: string): Promise<void> {
    const { port, transports } = this.#opts;
    const wantUdp = transports.includes('udp');
    const wantTcp = transports.includes('tcp');
    for (let attempt = 1; ; attempt++) {
      const udpPort = wantUdp ? await this.#bindUdp(host, port) : port;
      if (!wantTcp) {
        this.#boundPort = udpPort;
        return;
      }
      try {
        this.#boundPort = await this.#listenTcp(host, udpPort);
        return;
      } catch (err) {
        // Port 0: the number UDP got may be taken on TCP; pick another pair. A fixed port just fails.
        await this.#closeUdp();
        if (port !== 0 || !wantUdp || attempt >= SAME_PORT_ATTEMPTS) throw err;
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const socket of this.#allSockets) socket.destroy();
    this.#allSockets.clear();
    this.#connections.clear();
    await this.#closeUdp();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** Serialize and send. Never throws; failures are logged and reported through onSendError. */
  send(msg: SipMessage, dest: SipEndpoint): void {
    let data: Buffer;
    try {
      data = serializeMessage(msg);
    } catch (err) {
      this.#sendFailed({ msg, data: Buffer.alloc(0), dest }, err);
      return;
    }
    const item = { msg, data, dest };
    if (this.#stopped) {
      this.#sendFailed(item, new Error('transport stopped'));
      return;
    }
    if (dest.transport === 'udp') this.#sendUdp(item);
    else this.#sendTcp(item);
  }

  async #bindUdp(host: string, port: number): Promise<number> {
    const socket = await bindUdp(host, port, {
      message: (data, rinfo) =>
        this.#safe(() =>
          this.#handleData(data, { transport: 'udp', address: normalizeAddress(rinfo.address), port: rinfo.port }),
        ),
      error: (err) => this.#logger.warn({ err }, 'UDP socket error'),
    });
    this.#udp = socket;
    const addr = socket.address();
    this.#udpFamily = addr.family === 'IPv6' ? 6 : 4;
    this.#boundAddress = addr.address;
    return addr.port;
  }

  #closeUdp(): Promise<void> {
    const udp = this.#udp;
    this.#udp = undefined;
    if (!udp) return Promise.resolve();
    return new Promise((resolve) => {
      try {
        udp.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  async #listenTcp(host: string, port: number): Promise<number> {
    // A flood of idle connections must not exhaust file descriptors (the UDP socket and the DB need some too).
    const server = await listenTcp(
      host,
      port,
      MAX_INBOUND_TCP_CONNECTIONS,
      (socket) => this.#safe(() => this.#accept(socket)),
      (err) => this.#logger.warn({ err }, 'TCP server error'),
    );
    this.#server = server;
    const addr = server.address() as net.AddressInfo;
    this.#boundAddress = addr.address;
    return addr.port;
  }

  #accept(socket: net.Socket): void {
    if (this.#stopped || !socket.remoteAddress || socket.remotePort === undefined) {
      socket.destroy();
      return;
    }
    const remote: SipEndpoint = {
      transport: 'tcp',
      address: normalizeAddress(socket.remoteAddress),
      port: socket.remotePort,
    };
    this.#track(socket, remote, true);
  }

  /** Register a socket: framing, idle timeout, cleanup. Inbound sockets are usable for sending at once. */
  #track(socket: net.Socket, remote: SipEndpoint, connected: boolean): Connection {
    const conn: Connection = {
      key: connKey(remote.address, remote.port),
      socket,
      framer: new StreamFramer({ maxMessageSize: this.#maxSize }),
      connected,
      queue: [],
      remote,
    };
    this.#connections.set(conn.key, conn);
    this.#allSockets.add(socket);
    socket.setNoDelay(true);
    socket.setTimeout(this.#idleMs, () => {
      this.#logger.debug({ peer: conn.key }, 'closing idle SIP TCP connection');
      socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.#safe(() => this.#handleStream(conn, chunk)));
    socket.on('error', (err) => {
      conn.lastError = err;
      this.#logger.warn({ err, peer: `${remote.address}:${remote.port}` }, 'SIP TCP connection error');
    });
    socket.on('close', () => {
      this.#allSockets.delete(socket);
      if (this.#connections.get(conn.key) === conn) this.#connections.delete(conn.key);
      const lost = conn.queue;
      conn.queue = [];
      for (const item of lost)
        this.#sendFailed(item, conn.lastError ?? new Error('TCP connection closed before it was established'));
    });
    return conn;
  }

  #handleStream(conn: Connection, chunk: Buffer): void {
    for (const result of conn.framer.push(chunk)) {
      if (result.ok) {
        this.#handleData(result.data, conn.remote);
        continue;
      }
      this.counters.parseErrors++;
      this.#logger.warn({ error: result.error, peer: conn.key }, 'SIP TCP framing error');
      this.#emitParseError(result.error, undefined, conn.remote);
      if (result.fatal) {
        conn.socket.destroy();
        return;
      }
    }
  }

  #handleData(data: Buffer, source: SipEndpoint): void {
    if (this.#stopped) return;
    // CRLF keep-alives (RFC 5626 §3.5.1) and empty datagrams are not messages.
    if (data.every((b) => b === 0x0d || b === 0x0a || b === 0x20 || b === 0x09)) return;
    const parsed = parseMessage(data, { maxSize: this.#maxSize });
    if (!parsed.ok) {
      this.counters.parseErrors++;
      this.#logger.debug({ error: parsed.error, source }, 'unparseable SIP message');
      if (parsed.partial) stampReceived(parsed.partial, source);
      this.#emitParseError(parsed.error, parsed.partial, source);
      return;
    }
    const msg = parsed.message;
    if (msg.kind === 'request' && !stampReceived(msg, source)) {
      this.counters.parseErrors++;
      this.#emitParseError('bad Via', undefined, source);
      return;
    }
    this.counters.received++;
    msg.source = source;
    for (const handler of this.#messageHandlers) this.#safe(() => handler(msg, source));
  }

  #sendUdp(item: Pending): void {
    const udp = this.#udp;
    if (!udp) {
      this.#sendFailed(item, new Error('UDP transport not enabled'));
      return;
    }
    try {
      udp.send(item.data, item.dest.port, udpSendAddress(item.dest.address, this.#udpFamily), (err) => {
        if (err) this.#sendFailed(item, err);
      });
      this.counters.sent++;
    } catch (err) {
      this.#sendFailed(item, err);
    }
  }

  #sendTcp(item: Pending): void {
    if (!this.#opts.transports.includes('tcp')) {
      this.#sendFailed(item, new Error('TCP transport not enabled'));
      return;
    }
    const key = connKey(item.dest.address, item.dest.port);
    let conn = this.#connections.get(key);
    if (conn?.socket.destroyed) {
      this.#connections.delete(key);
      conn = undefined;
    }
    if (!conn) conn = this.#connect(item.dest);
    if (!conn.connected) {
      conn.queue.push(item);
      return;
    }
    this.#writeTcp(conn, item);
  }

  #connect(dest: SipEndpoint): Connection {
    const host = stripBrackets(dest.address);
    const socket = net.connect({ host, port: dest.port });
    const conn = this.#track(socket, { transport: 'tcp', address: normalizeAddress(host), port: dest.port }, false);
    socket.once('connect', () => {
      conn.connected = true;
      const queued = conn.queue;
      conn.queue = [];
      for (const item of queued) this.#writeTcp(conn, item);
    });
    return conn;
  }

  #writeTcp(conn: Connection, item: Pending): void {
    try {
      conn.socket.write(item.data, (err) => {
        if (err) this.#sendFailed(item, err);
      });
      this.counters.sent++;
    } catch (err) {
      this.#sendFailed(item, err);
    }
  }

  #sendFailed(item: Pending, err: unknown): void {
    this.counters.dropped++;
    const error = err instanceof Error ? err : new Error(String(err));
    const { dest, msg } = item;
    this.#logger.warn(
      { err: error, dest: `${dest.transport}:${dest.address}:${dest.port}`, kind: msg.kind },
      'SIP send failed',
    );
    // Deferred so a transaction never sees its transport error before sendRequest() has returned.
    queueMicrotask(() => {
      for (const handler of this.#sendErrorHandlers) this.#safe(() => handler(error, msg, dest));
    });
  }

  #emitParseError(error: string, partial: SipRequest | undefined, source: SipEndpoint): void {
    for (const handler of this.#parseErrorHandlers) this.#safe(() => handler(error, partial, source));
  }

  #safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#logger.error({ err }, 'SIP transport handler failed');
    }
  }
}
