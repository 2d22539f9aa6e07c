/**
 * SIP transport layer (RFC 3261 §18) over UDP, TCP and TLS: binds the listening sockets, frames and parses what
 * arrives, stamps received/rport on incoming requests (§18.2.1, RFC 3581) and sends messages. TCP and TLS
 * connections, in either direction, are pooled and reused by connections.ts (a response goes back on the connection
 * its request came on); certificates and server names are tls.ts's.
 */
import type dgram from 'node:dgram';
import type net from 'node:net';
import { silentLogger, type Logger } from '../../logger.ts';
import type { CertificateReload } from '../port.ts';
import { ConnectionPool, type Pending } from './connections.ts';
import { bindUdp, familyOf, type IpFamily, ipv6Unavailable, listenTcp, udpSendAddress } from './listen.ts';
import type { SipEndpoint, SipMessage, SipRequest, SipTransportName } from './message.ts';
import { parseMessage } from './parser.ts';
import { serializeMessage } from './serialize.ts';
import { TlsClient, TlsListener, type TlsServerFiles } from './tls.ts';
import { normalizeAddress, stampReceived } from './via.ts';

/** Inbound TCP (and, separately, TLS) connections accepted at once; PBX trunks use a handful. */
const MAX_INBOUND_TCP_CONNECTIONS = 4096;

export { responseDestination } from './transaction-helpers.ts';

export interface TransportLayerOptions {
  host: string;
  port: number;
  /** Listening transports; TLS connections we open (toward Telnyx) need no `tls` here, only a peer to trust. */
  transports: SipTransportName[];
  maxMessageSize?: number;
  /** Close TCP/TLS connections with no traffic for this long (default 5 min). */
  tcpIdleTimeoutMs?: number;
  /** The TLS listener (required when `transports` has tls): its own port and the certificate it serves. */
  tls?: TlsServerFiles & { port: number };
  /** Extra trust anchors (PEM) for TLS connections we open, on top of the system's. */
  tlsCaFile?: string;
  /**
   * TLS connections will be opened (TELNYX_SIP_TRANSPORT=tls): build their trust store at start. Parsing the CA bundle
   * blocks the event loop ~100 ms, which on the first call would delay every message in flight.
   */
  outboundTls?: boolean;
  /** CRLF ping interval on idle TCP/TLS connections we opened (RFC 5626 §3.5.1); 0: none. Default 30 s. */
  keepAliveIntervalMs?: number;
  /** Outbound TCP/TLS connect (and handshake) limit; default CONNECT_TIMEOUT_MS (connections.ts). Tests shorten it. */
  connectTimeoutMs?: number;
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

const DEFAULT_IDLE_MS = 5 * 60_000;
const DEFAULT_KEEPALIVE_MS = 30_000;
/** Peers' UDP send addresses remembered (cleared when full: SIP scanners must not grow it for ever). */
const SEND_ADDRESS_CACHE_SIZE = 1024;
/** Retries when the UDP port picked for port 0 turns out to be taken on TCP. */
const SAME_PORT_ATTEMPTS = 5;

export class TransportLayer {
  readonly counters: TransportCounters = { received: 0, sent: 0, parseErrors: 0, dropped: 0 };
  readonly #opts: TransportLayerOptions;
  readonly #logger: Logger;
  readonly #maxSize: number;
  readonly #pool: ConnectionPool;
  readonly #tlsClient: TlsClient;
  #udp: dgram.Socket | undefined;
  #udpFamily: 4 | 6 = 4;
  /** Destination address → the form the UDP socket takes (#sendAddress); depends on #udpFamily, reset on bind. */
  readonly #sendAddresses = new Map<string, string>();
  #server: net.Server | undefined;
  #tlsListener: TlsListener | undefined;
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
    this.#boundAddress = opts.host;
    // Read now: a missing CA file is a start-up error, not a surprise on the first TLS call.
    this.#tlsClient = new TlsClient(opts.tlsCaFile);
    this.#pool = new ConnectionPool({
      logger: this.#logger,
      maxMessageSize: this.#maxSize,
      idleMs: opts.tcpIdleTimeoutMs ?? DEFAULT_IDLE_MS,
      keepAliveIntervalMs: opts.keepAliveIntervalMs ?? DEFAULT_KEEPALIVE_MS,
      connectTimeoutMs: opts.connectTimeoutMs,
      tlsClient: this.#tlsClient,
      message: (data, source) => this.#handleData(data, source),
      framingError: (error, source) => {
        this.counters.parseErrors++;
        this.#emitParseError(error, undefined, source);
      },
      sendFailed: (item, err) => this.#sendFailed(item, err),
      sent: () => this.counters.sent++,
      safe: (fn) => this.#safe(fn),
    });
  }

  /** The TLS listener's port, 0 when the layer does not listen on TLS. */
  get tlsPort(): number {
    return this.#tlsListener?.address.port ?? 0;
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

  /**
   * A message could not be sent (TCP connect/write failure, TLS handshake or certificate refused, UDP send error);
   * always reported asynchronously.
   */
  onSendError(handler: SendErrorHandler): void {
    this.#sendErrorHandlers.push(handler);
  }

  /** `::` (dual-stack, the default) falls back to 0.0.0.0 on a machine without IPv6; other addresses fail as given. */
  async start(): Promise<void> {
    const { host } = this.#opts;
    if (this.#opts.outboundTls) this.#tlsClient.prepare();
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
    await this.#listenUdpTcp(host);
    const tls = this.#opts.tls;
    if (!this.#opts.transports.includes('tls')) return;
    if (!tls) throw new Error('SIP over TLS needs a certificate and key (SIP_TLS_CERT_FILE, SIP_TLS_KEY_FILE)');
    try {
      this.#tlsListener = new TlsListener({
        host,
        port: tls.port,
        files: tls,
        maxConnections: MAX_INBOUND_TCP_CONNECTIONS,
        logger: this.#logger,
        onConnection: (socket) => this.#safe(() => this.#pool.accept(socket, 'tls')),
      });
      await this.#tlsListener.listen();
    } catch (err) {
      await this.#closeListeners();
      throw err;
    }
    if (!this.#udp && !this.#server) this.#boundAddress = this.#tlsListener.address.address;
  }

  /** Serve a new certificate on new TLS connections (SIGHUP). */
  reloadCertificates(): CertificateReload {
    return this.#tlsListener?.reload() ?? { outcome: 'none' };
  }

  async #listenUdpTcp(host: string): Promise<void> {
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
    this.#pool.closeAll();
    await this.#closeListeners();
  }

  async #closeListeners(): Promise<void> {
    await this.#closeUdp();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    const tls = this.#tlsListener;
    this.#tlsListener = undefined;
    await tls?.close();
  }

  /**
   * Serialize and send. Never throws; failures are logged and reported through onSendError. Returns the bytes sent
   * (or queued), which a transaction may keep to resend them (encodedCopy).
   */
  send(msg: SipMessage, dest: SipEndpoint): Buffer | undefined {
    let data: Buffer;
    try {
      data = msg.wire ?? serializeMessage(msg);
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
    else if (dest.transport === 'tcp' && !this.#opts.transports.includes('tcp'))
      this.#sendFailed(item, new Error('TCP transport not enabled'));
    else this.#pool.send(item);
    return data;
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
    this.#sendAddresses.clear();
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
      (socket) => this.#safe(() => this.#pool.accept(socket, 'tcp')),
      (err) => this.#logger.warn({ err }, 'TCP server error'),
    );
    this.#server = server;
    const addr = server.address() as net.AddressInfo;
    this.#boundAddress = addr.address;
    return addr.port;
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
      udp.send(item.data, item.dest.port, this.#sendAddress(item.dest.address), (err) => {
        if (err) this.#sendFailed(item, err);
      });
      this.counters.sent++;
    } catch (err) {
      this.#sendFailed(item, err);
    }
  }

  /** udpSendAddress, worked out once per peer: a gateway talks to a handful of addresses, datagram after datagram. */
  #sendAddress(address: string): string {
    let written = this.#sendAddresses.get(address);
    if (written === undefined) {
      written = udpSendAddress(address, this.#udpFamily);
      if (this.#sendAddresses.size >= SEND_ADDRESS_CACHE_SIZE) this.#sendAddresses.clear();
      this.#sendAddresses.set(address, written);
    }
    return written;
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
