/**
 * SIP over TLS (RFC 3261 §26.2.1): the trust store and server name of the connections we open, the certificate our
 * TLS listener serves (reloadable on SIGHUP), and plain words for a refused certificate.
 *
 * Server identity (RFC 5922 §4): the name checked against the peer's certificate, and sent as SNI, is the host name
 * of the URI the next hop was resolved from: the outbound proxy when it is configured by name, else the request's top
 * Route, else its Request-URI (the Telnyx domain). Never an SRV target or an A record's address: RFC 5922 §4.1 has the
 * client check the domain it was asked to reach, since nothing secures the DNS answers that led from it to the
 * server. This is also what makes `TELNYX_OUTBOUND_PROXY=<IP>:5061` still check the certificate against the domain.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../../logger.ts';
import type { CertificateReload } from '../port.ts';
import { parseNameAddr } from '../syntax/address.ts';
import { parseUri, stripBrackets } from '../syntax/uri.ts';
import { listenOn } from './listen.ts';
import type { SipEndpoint, SipMessage } from './message.ts';

/** TLS 1.0/1.1 are deprecated (RFC 8996); every SIP stack Telnyx or a PBX runs today speaks 1.2. */
const MIN_VERSION = 'TLSv1.2';
/** A client that connects and never finishes its handshake holds a descriptor this long at most. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** A host name (not an IP literal) from a URI, lower-cased; undefined for addresses and unparseable text. */
function hostNameOf(uri: string): string | undefined {
  try {
    const host = stripBrackets(parseUri(uri).host);
    return host && net.isIP(host) === 0 ? host.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

/** The name to verify the certificate of `dest` against: see the file comment. Undefined: check the IP address. */
export function tlsServerName(msg: SipMessage, dest: SipEndpoint): string | undefined {
  if (dest.serverName) return dest.serverName;
  if (msg.kind !== 'request') return undefined;
  const route = msg.headers.getAll('Route')[0];
  if (route) {
    try {
      return hostNameOf(parseNameAddr(route.split(',')[0] ?? '').rawUri);
    } catch {
      return undefined;
    }
  }
  return hostNameOf(msg.uri);
}

/** The proxy's own name when it is configured by name: it, not the Request-URI's domain, is whom we connect to. */
export function proxyServerName(host: string): string | undefined {
  const bare = stripBrackets(host);
  return net.isIP(bare) === 0 ? bare.toLowerCase() : undefined;
}

/**
 * Trust anchors of the connections we open: Node's default store, the operating system's (Debian's
 * ca-certificates), and the operator's extra CA file. The file is read when this is built, so a missing or
 * garbled TELNYX_TLS_CA_FILE stops start-up instead of the first TLS call; the context itself (parsing a few hundred
 * roots takes ~100 ms) is built on first use, as most gateways never open a TLS connection.
 */
export class TlsClient {
  readonly #extra: string[];
  #context: tls.SecureContext | undefined;

  constructor(caFile?: string) {
    this.#extra = caFile ? readCaFile(caFile) : [];
  }

  /** Build the trust store now: a gateway that talks TLS to Telnyx should not stall its first call for it. */
  prepare(): void {
    this.#secureContext();
  }

  connect(host: string, port: number, serverName: string | undefined): tls.TLSSocket {
    return tls.connect({
      host: stripBrackets(host),
      port,
      // SNI carries host names only (RFC 6066 §3); without one, Node checks the certificate against the IP address.
      servername: serverName,
      secureContext: this.#secureContext(),
      minVersion: MIN_VERSION,
      // rejectUnauthorized and checkServerIdentity stay at their defaults: the chain and the name are both verified.
    });
  }

  #secureContext(): tls.SecureContext {
    if (!this.#context) {
      const roots = new Set([...tls.getCACertificates('default'), ...systemCertificates(), ...this.#extra]);
      this.#context = tls.createSecureContext({ ca: [...roots], minVersion: MIN_VERSION });
    }
    return this.#context;
  }
}

function systemCertificates(): string[] {
  try {
    return tls.getCACertificates('system');
  } catch {
    return []; // a platform whose store Node cannot read: the default store and the CA file still apply
  }
}

/** The PEM certificates of the operator's CA file, each checked, so a bad file fails start-up with its name. */
function readCaFile(file: string): string[] {
  try {
    const text = fs.readFileSync(file, 'utf8');
    const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    if (pems.length === 0) throw new Error('no PEM certificate in it');
    for (const pem of pems) new crypto.X509Certificate(pem); // throws on a garbled certificate
    return pems;
  } catch (err) {
    throw new Error(`cannot use the TLS CA file (TELNYX_TLS_CA_FILE=${file}): ${(err as Error).message}`);
  }
}

/** OpenSSL's verification failures (UNABLE_TO_GET_ISSUER_CERT_LOCALLY, ...) and Node's host name check. */
const CERTIFICATE_CODES = /CERT|SELF_SIGNED|ISSUER|SIGNATURE|CHAIN|VERIFY/;

/**
 * Why the peer's certificate was refused ("self-signed certificate in certificate chain"), or undefined when the
 * handshake failed for another reason. ERR_SSL_* codes are alerts the peer sent: its complaint, not our verdict.
 */
export function certificateRefusal(err: Error): string | undefined {
  const code = (err as NodeJS.ErrnoException).code;
  if (!code || code.startsWith('ERR_SSL_') || !CERTIFICATE_CODES.test(code)) return undefined;
  // Node's hint ("try running Node.js with --use-system-ca") is wrong here: the system's CAs are already trusted.
  const why = err.message.replace(/;\s*if the root CA is installed locally.*$/s, '');
  return UNTRUSTED_ISSUER.has(code)
    ? `${why} (no CA the gateway trusts signed it: system CAs, TELNYX_TLS_CA_FILE)`
    : why;
}

/** The chain does not lead to a trusted root: the operator's fix is a CA file (or the peer's chain). */
const UNTRUSTED_ISSUER = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
]);

export interface TlsServerFiles {
  certFile: string;
  keyFile: string;
}

interface LoadedCertificate {
  options: tls.SecureContextOptions;
  subject: string;
  validTo: string;
  fingerprint256: string;
}

/** Read and check a certificate chain and its key (a mismatch throws here, not in a client's handshake). */
function loadCertificate(files: TlsServerFiles): LoadedCertificate {
  const cert = fs.readFileSync(files.certFile);
  const key = fs.readFileSync(files.keyFile);
  const options: tls.SecureContextOptions = { cert, key, minVersion: MIN_VERSION };
  tls.createSecureContext(options);
  const leaf = new crypto.X509Certificate(cert);
  return {
    options,
    subject: leaf.subject.replace(/\n/g, ', '),
    validTo: leaf.validTo,
    fingerprint256: leaf.fingerprint256,
  };
}

export interface TlsListenerOptions {
  host: string;
  port: number;
  files: TlsServerFiles;
  maxConnections: number;
  logger: Logger;
  onConnection(socket: tls.TLSSocket): void;
}

/** The TLS server for peers (the PBX) that connect to us; its certificate can be replaced while it runs. */
export class TlsListener {
  readonly #server: tls.Server;
  readonly #opts: TlsListenerOptions;

  /** Loads the certificate (a bad one throws here, naming the files) and builds the server; listen() binds it. */
  constructor(opts: TlsListenerOptions) {
    this.#opts = opts;
    let loaded: LoadedCertificate;
    try {
      loaded = loadCertificate(opts.files);
    } catch (err) {
      throw new Error(`cannot load the SIP TLS certificate (${describeFiles(opts.files)}): ${(err as Error).message}`);
    }
    this.#server = tls.createServer({ ...loaded.options, handshakeTimeout: HANDSHAKE_TIMEOUT_MS }, opts.onConnection);
    this.#server.maxConnections = opts.maxConnections;
    // A scanner or a PBX with the wrong CA: worth a line, never worth more than one per connection.
    this.#server.on('tlsClientError', (err, socket) =>
      opts.logger.warn({ err, peer: `${socket.remoteAddress}:${socket.remotePort}` }, 'SIP TLS handshake failed'),
    );
    opts.logger.info(certificateFields(loaded), 'SIP TLS certificate loaded');
  }

  async listen(): Promise<void> {
    const { host, port, logger } = this.#opts;
    try {
      await listenOn(this.#server, host, port, (err) => logger.warn({ err }, 'TLS server error'));
    } catch (err) {
      throw explainListenError(err, host, port);
    }
  }

  get address(): net.AddressInfo {
    return this.#server.address() as net.AddressInfo;
  }

  /** New handshakes get the new certificate; a refused reload keeps the old one serving. */
  reload(): CertificateReload {
    const { files, logger } = this.#opts;
    try {
      const loaded = loadCertificate(files);
      this.#server.setSecureContext(loaded.options);
      logger.info(certificateFields(loaded), 'SIP TLS certificate reloaded');
      return { outcome: 'reloaded', ...certificateFields(loaded) };
    } catch (err) {
      const error = `${describeFiles(files)}: ${(err as Error).message}`;
      logger.error({ error }, 'SIP TLS certificate reload refused: the previous certificate stays in force');
      return { outcome: 'refused', error };
    }
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

function certificateFields(c: LoadedCertificate): { subject: string; validTo: string; fingerprint256: string } {
  return { subject: c.subject, validTo: c.validTo, fingerprint256: c.fingerprint256 };
}

function describeFiles(files: TlsServerFiles): string {
  return `SIP_TLS_CERT_FILE=${files.certFile}, SIP_TLS_KEY_FILE=${files.keyFile}`;
}

/**
 * The TLS port is its own setting: an "in use" error must name it, not SIP_PORT (app.ts names SIP_PORT for errors
 * that keep their code). Errors meaning "no IPv6 here" keep their code, so the transport can fall back to 0.0.0.0.
 */
function explainListenError(err: unknown, host: string, port: number): unknown {
  const code = (err as NodeJS.ErrnoException).code;
  if (code !== 'EADDRINUSE' && code !== 'EACCES') return err;
  const why = code === 'EADDRINUSE' ? 'is already in use' : 'needs privileges';
  const where = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Error(`cannot listen for SIP over TLS on ${where} (SIP_TLS_PORT): the address ${why} (${code})`, {
    cause: err,
  });
}
