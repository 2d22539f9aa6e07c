/**
 * A test double of drachtio-server: the real drachtio-srf client connects to it over drachtio's TCP wire protocol
 * (./wire.ts), and it does the SIP side with our embedded transport and transaction layers (./stack.ts). A fixture,
 * not a product: it models what the gateway's drachtio adapter relies on, each piece citing the drachtio-server
 * source it imitates (github.com/drachtio/drachtio-server, src/).
 *
 * Client messages handled (client.cpp BaseClient::processClientMessage): `authenticate` (secret and tags; OK carries
 * the SIP hostports, the version and the local hostports), `route` / `remove_route` (which methods of new requests
 * this client gets; client-controller.cpp wants_requests), `ping` (OK|pong), and `sip` (a response to a request it
 * was handed, an in-dialog request by dialog id, a CANCEL by transaction id, or a new request with an optional
 * outbound proxy). Sent to clients: `response` and `sip` (wire.ts). No `cdr:*`: drachtio-server sends CDRs only to
 * clients that route `cdr:attempt|start|stop` (cdr.cpp Cdr::postCdr), which drachtio-srf does only when the
 * application listens for them, and the gateway does not.
 *
 * drachtio-server's own RFC 4028 behaviour is modelled where it changes messages (session-timers.ts), not its timers.
 * Not modelled either: proxying; outbound connections (`sip` routed to an HTTP/TCP app); TLS/WebSocket transports;
 * DNS (targets must be IP literals); forking; PRACK for reliable provisionals we send; UPDATE during an INVITE in
 * progress; a CANCEL crossing our 2xx; sofia-sip's own header additions (Allow, Supported, User-Agent).
 */
import net from 'node:net';
import { silentLogger, type Logger } from '../../../src/logger.ts';
import { AppSide } from './app-side.ts';
import type { AppLink, Outcome } from './dialogs.ts';
import { NetworkSide } from './network-side.ts';
import { Stack } from './stack.ts';
import { type ClientMessage, frame, parseAppSip, parseClientMessage, reply, WireDecoder } from './wire.ts';

/** The version drachtio-server reports in its authenticate answer (drachtio-srf reads `v0.8.2` or later as pinging). */
const VERSION = 'v0.9.10-double';

export interface DrachtioDoubleOptions {
  secret: string;
  /** Address for the admin port and SIP (default 127.0.0.1). */
  host?: string;
  logger?: Logger;
}

interface Connection extends AppLink {
  socket: net.Socket;
  authenticated: boolean;
  routes: Set<string>;
}

export class DrachtioServerDouble {
  readonly #opts: DrachtioDoubleOptions;
  readonly #logger: Logger;
  readonly #stack: Stack;
  readonly #network: NetworkSide;
  readonly #app: AppSide;
  readonly #connections = new Set<Connection>();
  readonly #wire: string[] = [];
  #admin: net.Server | undefined;

  constructor(opts: DrachtioDoubleOptions) {
    this.#opts = opts;
    this.#logger = opts.logger ?? silentLogger();
    this.#stack = new Stack(opts.host ?? '127.0.0.1', this.#logger);
    this.#network = new NetworkSide(this.#stack, (method) => this.#routeFor(method));
    this.#app = new AppSide(this.#stack);
  }

  async start(): Promise<void> {
    await this.#stack.start();
    const admin = net.createServer((socket) => this.#accept(socket));
    this.#admin = admin;
    await new Promise<void>((resolve, reject) => {
      admin.once('error', reject);
      admin.listen(0, this.#opts.host ?? '127.0.0.1', () => resolve());
    });
  }

  async stop(): Promise<void> {
    for (const c of this.#connections) c.socket.destroy();
    this.#connections.clear();
    await new Promise<void>((resolve) => (this.#admin ? this.#admin.close(() => resolve()) : resolve()));
    await this.#stack.stop();
  }

  /** The port drachtio-srf connects to (drachtio-server's admin port, 9022 by default). */
  get adminPort(): number {
    return (this.#admin?.address() as net.AddressInfo | null)?.port ?? 0;
  }

  /** Where SIP peers reach the gateway: UDP and TCP on this port. */
  get sipPort(): number {
    return this.#stack.local.port;
  }

  /** The dialogs drachtio-server would still hold (a leak shows here). */
  get dialogCount(): number {
    return this.#stack.dialogCount;
  }

  /** The last wire messages both ways, for a failing test's diagnostics. */
  wireLog(): string {
    return this.#wire.join('\n');
  }

  #accept(socket: net.Socket): void {
    socket.setNoDelay(true);
    const decoder = new WireDecoder();
    const conn: Connection = {
      socket,
      authenticated: false,
      routes: new Set(),
      send: (text) => {
        this.#trace('>>', text);
        if (!socket.destroyed) socket.write(frame(text));
      },
    };
    this.#connections.add(conn);
    socket.on('data', (chunk) => {
      try {
        for (const text of decoder.push(chunk)) this.#handle(conn, text);
      } catch (err) {
        this.#logger.warn({ err }, 'drachtio double: dropping a client that sent a bad message');
        socket.destroy();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => this.#connections.delete(conn));
  }

  #handle(conn: Connection, text: string): void {
    this.#trace('<<', text);
    const msg = parseClientMessage(text);
    if (msg.type === 'authenticate') {
      this.#authenticate(conn, msg);
      return;
    }
    if (!conn.authenticated) {
      conn.send(reply(msg.id, 'NO', 'not authenticated'));
      return;
    }
    if (msg.type === 'route' || msg.type === 'remove_route') {
      const verb = (msg.args[0] ?? '').toLowerCase();
      if (msg.type === 'route') conn.routes.add(verb);
      else conn.routes.delete(verb);
      conn.send(reply(msg.id, 'OK'));
    } else if (msg.type === 'ping') {
      conn.send(reply(msg.id, 'OK', 'pong'));
    } else if (msg.type === 'sip') {
      this.#sip(conn, msg);
    } else {
      conn.send(reply(msg.id, 'NO', 'Unknown message type'));
    }
  }

  #authenticate(conn: Connection, msg: ClientMessage): void {
    if (msg.args[0] !== this.#opts.secret) {
      conn.send(reply(msg.id, 'NO', 'incorrect secret'));
      return;
    }
    conn.authenticated = true;
    const { host, port } = this.#stack.local;
    const hostports = `udp/${host}:${port},tcp/${host}:${port}`;
    conn.send(reply(msg.id, 'OK', `${hostports}|${VERSION}|${hostports}`));
  }

  /** `sip|<transactionId>|<dialogId>[|<route url>]` followed by a SIP message. */
  #sip(conn: Connection, msg: ClientMessage): void {
    const [txnId = '', dialogId = '', routeUrl = ''] = msg.args;
    const app = parseAppSip(msg.sip);
    let outcome: Outcome;
    if (app.startLine.startsWith('SIP/')) {
      outcome = txnId ? this.#network.respond(txnId, app) : { ok: false, reason: 'transaction id missing' };
    } else {
      outcome = this.#app.request(conn, txnId, dialogId, routeUrl, app);
    }
    if (!outcome.ok) {
      this.#logger.debug({ reason: outcome.reason }, 'drachtio double: request refused');
      conn.send(reply(msg.id, 'NOK', outcome.reason));
      return;
    }
    conn.send(reply(msg.id, 'OK', outcome.data));
    outcome.after?.();
  }

  /** A connected client that routed the method (client-controller.cpp selectClientForRequestOutsideDialog). */
  #routeFor(method: string): AppLink | undefined {
    const verb = method.toLowerCase();
    for (const c of this.#connections) if (c.authenticated && c.routes.has(verb)) return c;
    return undefined;
  }

  #trace(dir: string, text: string): void {
    this.#wire.push(`${dir} ${text.split('\r\n', 1)[0]}`);
    if (this.#wire.length > 200) this.#wire.shift();
  }
}
