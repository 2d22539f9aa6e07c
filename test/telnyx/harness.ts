/**
 * Test harness for the Telnyx HTTP paths: the real route handlers (and the admin GET /calls) on an HttpServer
 * (port 0), a real call registry in a temp DATA_DIR, the real Kallglot client and SessionEnder against a
 * KallglotSandbox, and Telnyx-style Ed25519 signing with a freshly generated key pair.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { create } from 'xmlbuilder2';
import { pino } from 'pino';
import { loadConfig } from '../../src/config/load.ts';
import type { GatewayConfig } from '../../src/config/load.ts';
import { HttpServer } from '../../src/http/server.ts';
import { Metrics, registerMetricsRoute } from '../../src/metrics/metrics.ts';
import { registerTelnyxRoutes } from '../../src/telnyx/routes.ts';
import { registerCallRoutes } from '../../src/admin/calls-routes.ts';
import type { TelnyxRoutes } from '../../src/telnyx/routes.ts';
import type { KallglotSessions } from '../../src/telnyx/outbound.ts';
import { KallglotClient } from '../../src/kallglot/client.ts';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { SessionEnder } from '../../src/sessions/ender.ts';
import { CallRegistry } from '../../src/registry/call-registry.ts';
import { parseRules } from '../../src/routing/load.ts';
import type { RuleSet } from '../../src/routing/types.ts';

export const ADMIN_TOKEN = 'admin-test-token';
export const TELNYX_API_KEY = 'KEY_test_telnyx';
export const DEFAULT_RULES =
  'default:\n  mode: bidirectional_translation\n  source_language: de\n  target_language: en\n';

/** An Ed25519 key pair, the public half exported the way the Telnyx portal shows it (base64 of the raw 32 bytes). */
export interface SigningKey {
  privateKey: crypto.KeyObject;
  publicKeyBase64: string;
}

export function generateSigningKey(): SigningKey {
  const { privateKey, publicKey } = crypto.generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  return { privateKey, publicKeyBase64: raw.toString('base64') };
}

/** Telnyx's signature headers over `<timestamp>|<raw body>`. */
export function signHeaders(
  key: SigningKey,
  body: string | Buffer,
  timestamp = Math.floor(Date.now() / 1000),
): Record<string, string> {
  const bytes = Buffer.concat([Buffer.from(`${timestamp}|`), Buffer.isBuffer(body) ? body : Buffer.from(body)]);
  return {
    'telnyx-signature-ed25519': crypto.sign(null, bytes, key.privateKey).toString('base64'),
    'telnyx-timestamp': String(timestamp),
  };
}

export interface HarnessOptions {
  env?: Record<string, string>;
  rules?: string;
  /** Set false to start without TELNYX_PUBLIC_KEY. */
  publicKey?: boolean;
  /** Interpose on the Kallglot client (e.g. to hold a create until the test releases it). */
  wrapKallglot?: (k: KallglotSessions) => KallglotSessions;
}

export interface Harness {
  url: string;
  config: GatewayConfig;
  key: SigningKey;
  sandbox: KallglotSandbox;
  registry: CallRegistry;
  metrics: Metrics;
  routes: TelnyxRoutes;
  /** POST a signed webhook (form-encoded when `body` is a record of strings, JSON otherwise). */
  webhook(
    path: string,
    body: Record<string, string> | object | string,
    opts?: { headers?: Record<string, string>; form?: boolean },
  ): Promise<Response>;
  close(): Promise<void>;
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-telnyx-'));
  const key = generateSigningKey();
  const sandbox = new KallglotSandbox();
  const { url: kallglotUrl } = await sandbox.start(0, '127.0.0.1');
  const config = loadConfig({
    env: {
      DATA_DIR: dataDir,
      ADMIN_TOKEN,
      KALLGLOT_API_URL: kallglotUrl,
      KALLGLOT_API_KEY: 'sk_test_x',
      ...(opts.publicKey === false ? {} : { TELNYX_PUBLIC_KEY: key.publicKeyBase64 }),
      ...opts.env,
    },
  });
  const logger = pino({ level: 'silent' });
  const kallglot = new KallglotClient({
    baseUrl: kallglotUrl,
    apiKey: 'sk_test_x',
    requestTimeoutMs: 1000,
    retries: 0,
    createDeadlineMs: 2000,
    endDeadlineMs: 2000,
  });
  const registry = new CallRegistry(dataDir);
  const sessionEnder = new SessionEnder(kallglot, logger, { store: registry, baseDelayMs: 20, maxDelayMs: 100 });
  const rules: RuleSet = parseRules(opts.rules ?? DEFAULT_RULES, 'test-rules.yaml');
  const http = new HttpServer(logger);
  const metrics = new Metrics({ defaultMetrics: false });
  registerMetricsRoute(http, metrics);
  registerCallRoutes(http, registry, ADMIN_TOKEN);
  const sessions = opts.wrapKallglot ? opts.wrapKallglot(kallglot) : kallglot;
  const routes = registerTelnyxRoutes(http, {
    config,
    logger,
    registry,
    kallglot: sessions,
    sessionEnder,
    rules: () => rules,
    metrics,
  });
  const port = await http.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    config,
    key,
    sandbox,
    registry,
    metrics,
    routes,
    async webhook(p, body, o = {}) {
      const form =
        o.form ??
        (typeof body === 'object' && Object.values(body).every((v) => typeof v === 'string') && !('data' in body));
      const text =
        typeof body === 'string'
          ? body
          : form
            ? new URLSearchParams(body as Record<string, string>).toString()
            : JSON.stringify(body);
      const headers = {
        'content-type': form ? 'application/x-www-form-urlencoded' : 'application/json',
        ...signHeaders(key, text),
        ...o.headers,
      };
      return fetch(`${url}${p}`, { method: 'POST', headers, body: text });
    },
    async close() {
      await routes.outbound.idle();
      await routes.inbound.idle();
      await sessionEnder.flush(3000);
      sessionEnder.stop();
      await http.close();
      registry.close();
      await kallglot.close();
      await sandbox.stop();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A Call Control webhook envelope. */
export function callEvent(
  eventType: string,
  payload: Record<string, unknown>,
  id: string = crypto.randomUUID(),
): object {
  return {
    data: { record_type: 'event', id, event_type: eventType, occurred_at: new Date().toISOString(), payload },
    meta: { attempt: 1 },
  };
}

export function clientState(o: object): string {
  return Buffer.from(JSON.stringify(o)).toString('base64');
}

/** Minimal DOM view of a TeXML document: element name, attributes, text and children, in order. */
export interface XmlEl {
  name: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlEl[];
}

interface DomNode {
  nodeType: number;
  nodeName: string;
  textContent: string | null;
  childNodes: ArrayLike<DomNode>;
  attributes?: ArrayLike<{ name: string; value: string }>;
}

export function parseXml(text: string): XmlEl {
  const walk = (n: DomNode): XmlEl => {
    const attrs: Record<string, string> = {};
    for (const a of Array.from(n.attributes ?? [])) attrs[a.name] = a.value;
    const children = Array.from(n.childNodes)
      .filter((c) => c.nodeType === 1)
      .map(walk);
    return { name: n.nodeName, attrs, text: n.textContent ?? '', children };
  };
  return walk(create(text).root().node as unknown as DomNode);
}

export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
