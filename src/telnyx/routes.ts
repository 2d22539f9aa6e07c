/**
 * The Telnyx HTTP surface:
 *   POST /webhooks/telnyx/voice         TeXML Voice URL (new call → TeXML)
 *   POST /webhooks/telnyx/status        TeXML status callbacks and Call Control events (hangup ends the session)
 *   POST /webhooks/telnyx/outbound      Call Control events of calls dialled by POST /calls
 *   POST /webhooks/telnyx/call-control  the Call Control application's webhook: incoming calls (inbound.ts) and
 *                                       the events of every call
 *   POST /webhooks/telnyx/recording     recording status (TeXML form or call.recording.saved)
 *   POST /calls                         operator API (Bearer ADMIN_TOKEN): start an outbound translated call
 * Every /webhooks/telnyx/* request must carry a valid Telnyx Ed25519 signature over its raw body; anything else is
 * refused before the body is even parsed.
 */
import { createRequire } from 'node:module';
import type Telnyx from 'telnyx';
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { RegistryPort } from '../registry/port.ts';
import type { RuleSet } from '../routing/types.ts';
import { TelnyxSignatureVerifier } from './verify.ts';
import { TelnyxEventProcessor } from './events.ts';
import { TexmlVoice, RECORDING_PATH } from './voice.ts';
import { TelnyxOutbound, OUTBOUND_WEBHOOK_PATH } from './outbound.ts';
import { CALL_CONTROL_PATH, TelnyxInbound } from './inbound.ts';
import type { KallglotSessions } from './outbound.ts';
import { texmlRecording } from './recording.ts';
import { safeJson } from '../json.ts';
import { parseCallControlEvent, parseParams, str } from './payload.ts';
import { checkAdminToken } from '../admin/calls-routes.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { HttpHandler, HttpRequest, HttpResponse, HttpServer } from '../http/server.ts';

export const VOICE_PATH = '/webhooks/telnyx/voice';
export const STATUS_PATH = '/webhooks/telnyx/status';
export { CALL_CONTROL_PATH, OUTBOUND_WEBHOOK_PATH, RECORDING_PATH };

export interface TelnyxRouteDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: RegistryPort;
  kallglot: KallglotSessions;
  sessionEnder: SessionEnder;
  rules: () => RuleSet;
  metrics?: Metrics;
}

export interface TelnyxRoutes {
  outbound: TelnyxOutbound;
  inbound: TelnyxInbound;
  events: TelnyxEventProcessor;
}

/**
 * The SDK is loaded on first use, not at import: it adds ~25 MiB of RSS to a daemon that, without TELNYX_API_KEY
 * (SIP only), never calls it.
 */
const requireOnDemand = createRequire(import.meta.url);

export function createTelnyxClient(config: GatewayConfig): Telnyx | undefined {
  if (!config.telnyx.apiKey) return undefined;
  const TelnyxSdk = requireOnDemand('telnyx') as typeof Telnyx;
  // Explicit values only: the SDK would otherwise fall back to TELNYX_* env vars behind the config's back.
  return new TelnyxSdk({
    apiKey: config.telnyx.apiKey,
    publicKey: null,
    baseURL: config.telnyx.apiBaseUrl || 'https://api.telnyx.com/v2',
    timeout: 10_000,
    maxRetries: 1,
  });
}

export function registerTelnyxRoutes(http: HttpServer, deps: TelnyxRouteDeps): TelnyxRoutes {
  const { config, logger, registry, metrics } = deps;
  const log = logger.child({ component: 'telnyx' });
  // A malformed key is a start-up error (thrown here); a missing one leaves the webhooks refusing everything.
  const verifier = config.telnyx.publicKey
    ? new TelnyxSignatureVerifier(config.telnyx.publicKey, config.telnyx.webhookToleranceSec)
    : undefined;
  if (!verifier) log.warn('TELNYX_PUBLIC_KEY is not set: every Telnyx webhook will be refused (503)');

  const telnyx = createTelnyxClient(config);
  const outbound = new TelnyxOutbound({ ...deps, logger: log, telnyx });
  const inbound = new TelnyxInbound({ ...deps, logger: log, telnyx });
  const events = new TelnyxEventProcessor({
    registry,
    sessionEnder: deps.sessionEnder,
    logger: log,
    hooks: {
      // client_state says whose call it is: one answered here (inbound) or one the gateway dialled.
      answeredWithoutStream: (callControlId, sessionId, state) =>
        state.direction === 'inbound'
          ? inbound.answered(callControlId, sessionId, state)
          : outbound.startStreamOnAnswer(callControlId, sessionId),
      speakEnded: (callControlId, state) => inbound.noticeEnded(callControlId, state),
      hungUp: (callId, sessionId) => {
        outbound.forget(sessionId);
        inbound.forget(callId);
      },
    },
  });
  const voice = new TexmlVoice({ ...deps, logger: log });

  const signed = (path: string, handler: HttpHandler): void => {
    http.route('POST', path, (req) => {
      if (!verifier) {
        metrics?.webhookVerificationFailed(path);
        return { status: 503, body: { error: 'webhook_verification_not_configured' } };
      }
      const result = verifier.verify(req.rawBody, req.headers);
      if (!result.ok) {
        metrics?.webhookVerificationFailed(path);
        log.warn({ path, reason: result.reason }, 'telnyx webhook refused: signature did not verify');
        return { status: 401, body: { error: 'invalid_signature' } };
      }
      return durable(handler, req);
    });
  };
  // Telnyx does not redeliver what was answered: the request's registry writes are on disk before the answer.
  const durable = async (handler: HttpHandler, req: HttpRequest): Promise<HttpResponse> => {
    const response = await handler(req);
    await registry.commitNow();
    return response;
  };

  signed(VOICE_PATH, (req) => voice.handle(req));
  const callEvents = (req: HttpRequest): Promise<HttpResponse> => eventsHandler(req, events);
  signed(STATUS_PATH, callEvents);
  signed(OUTBOUND_WEBHOOK_PATH, callEvents);
  signed(CALL_CONTROL_PATH, (req) => callControlHandler(req, events, inbound));
  signed(RECORDING_PATH, (req) => recordingHandler(req, deps.registry, events));

  http.route('POST', '/calls', (req) => {
    const denied = checkAdminToken(req, config.http.adminToken);
    if (denied) return denied;
    return durable((r) => outbound.start(r), req);
  });
  return { outbound, inbound, events };
}

/** Call Control JSON envelope, or a TeXML status callback (form fields CallSid/CallStatus). */
async function eventsHandler(req: HttpRequest, events: TelnyxEventProcessor): Promise<HttpResponse> {
  const ev = parseCallControlEvent(safeJson(req.rawBody.toString('utf8')));
  if (ev) return { status: 200, body: await events.callControl(ev) };
  const params = parseParams(req.rawBody, req.headers);
  if (params?.CallSid && params.CallStatus) return { status: 200, body: await events.texmlStatus(params) };
  // Signed by Telnyx but not something we act on: acknowledge so it is not redelivered.
  return { status: 200, body: { handled: 'unknown', ignored: 'unrecognised_body' } };
}

/** The Call Control application's webhook: an incoming call.initiated starts the inbound flow, the rest are events. */
async function callControlHandler(
  req: HttpRequest,
  events: TelnyxEventProcessor,
  inbound: TelnyxInbound,
): Promise<HttpResponse> {
  const ev = parseCallControlEvent(safeJson(req.rawBody.toString('utf8')));
  if (!ev) return { status: 200, body: { handled: 'unknown', ignored: 'unrecognised_body' } };
  if (ev.eventType === 'call.initiated' && str(ev.payload.direction) === 'incoming')
    return { status: 200, body: await inbound.initiated(ev) };
  return { status: 200, body: await events.callControl(ev) };
}

async function recordingHandler(
  req: HttpRequest,
  registry: RegistryPort,
  events: TelnyxEventProcessor,
): Promise<HttpResponse> {
  const ev = parseCallControlEvent(safeJson(req.rawBody.toString('utf8')));
  if (ev) return { status: 200, body: await events.callControl(ev) };
  const params = parseParams(req.rawBody, req.headers);
  if (!params) return { status: 400, body: { error: 'unrecognised_body' } };
  const result = await texmlRecording(registry, params);
  return 'error' in result ? { status: 400, body: result } : { status: 200, body: result };
}
