/**
 * The TeXML Voice URL: Telnyx posts each new call (CallSid, From, To, …) and executes the TeXML we return.
 * Routing rules decide bypass or translation; a translated call gets a Kallglot session and a `<Connect><Stream>`
 * to it. When Kallglot cannot be reached the caller is told and dialled straight through (or, with the busy
 * rate-limit policy, rejected busy), the same decisions the SIP path makes (sessions/failure-policy.ts).
 */
import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import { partyUri, sessionRequest, type SessionCreator } from '../sessions/request.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import { onSessionFailure } from '../sessions/failure-policy.ts';
import type { KallglotSession } from '../kallglot/types.ts';
import type { RegistryPort } from '../registry/port.ts';
import { matchRoute } from '../routing/match.ts';
import type { RuleSet, TranslatedDecision } from '../routing/types.ts';
import type { HttpRequest, HttpResponse } from '../http/server.ts';
import { parseParams, userPart } from './payload.ts';
import { TEXML_CONTENT_TYPE, dialTexml, hangupTexml, rejectBusyTexml, streamTexml } from './texml.ts';

export const RECORDING_PATH = '/webhooks/telnyx/recording';

export interface VoiceDeps {
  config: GatewayConfig;
  logger: Logger;
  registry: RegistryPort;
  kallglot: SessionCreator;
  sessionEnder: SessionEnder;
  rules: () => RuleSet;
}

export class TexmlVoice {
  readonly #d: VoiceDeps;

  constructor(deps: VoiceDeps) {
    this.#d = deps;
  }

  async handle(req: HttpRequest): Promise<HttpResponse> {
    const params = parseParams(req.rawBody, req.headers);
    const callSid = params?.CallSid;
    if (!params || !callSid) return { status: 400, body: { error: 'missing_call_sid' } };
    const from = params.From ?? '';
    const to = params.To ?? '';
    const { registry, logger } = this.#d;
    const log = logger.child({ callSid });
    // TeXML carries no PBX source address or SIP headers, so rules on `source`/`header` never match here.
    const decision = matchRoute(this.#d.rules(), {
      called: userPart(to),
      calling: userPart(from),
      sourceIp: '',
      direction: 'inbound', // TeXML calls arrive from Telnyx
      headers: () => undefined,
    });
    await registry.callStarted({ callId: callSid, kind: 'texml', from, to, rule: decision.ruleName });
    const direct = this.#d.config.telnyx.directNumber || to;

    if (decision.mode === 'bypass') {
      await registry.update(callSid, { route: 'bypass' });
      log.info({ rule: decision.ruleName }, 'texml call bypasses translation');
      return xml(direct ? dialTexml(direct) : hangupTexml());
    }

    let session: KallglotSession;
    try {
      session = await this.#createSession(decision, callSid, from, to);
    } catch (err) {
      const next = onSessionFailure(err, this.#d.config.calls.rateLimitPolicy);
      const fallbackReason = `kallglot_${next.reason}`;
      log.warn({ err, action: next.action }, 'Kallglot session could not be created for texml call');
      if (next.action === 'busy') {
        await registry.callEnded(callSid, { reason: 'rejected', route: 'rejected', fallbackReason });
        return xml(rejectBusyTexml());
      }
      await registry.update(callSid, { route: 'fallback', fallbackReason });
      return xml(
        direct ? dialTexml(direct, { unavailable: true, language: decision.greeting?.language }) : hangupTexml(),
      );
    }

    const stream = session.stream;
    if (!stream) {
      // A session we cannot connect to is useless and billed: end it and treat the call like any Kallglot failure.
      this.#d.sessionEnder.end(session.id, 'error', 'session_without_stream', callSid);
      await registry.update(callSid, {
        sessionId: session.id,
        route: 'fallback',
        fallbackReason: 'kallglot_no_stream',
      });
      return xml(
        direct ? dialTexml(direct, { unavailable: true, language: decision.greeting?.language }) : hangupTexml(),
      );
    }
    await registry.update(callSid, { sessionId: session.id, route: 'translated' });
    // The caller may have hung up while the session was being created; the status webhook found no session then.
    if ((await registry.get(callSid))?.state === 'ended') {
      this.#d.sessionEnder.end(session.id, 'completed', 'caller_hung_up_during_setup', callSid);
      return xml(hangupTexml());
    }
    log.info({ sessionId: session.id, rule: decision.ruleName }, 'texml call connected to Kallglot');
    return xml(
      streamTexml({
        greeting: decision.greeting,
        recordingCallback: decision.recording ? this.#callbackUrl(RECORDING_PATH) : undefined,
        streamUrl: stream.url,
        token: stream.token,
        sessionId: session.id,
      }),
    );
  }

  #createSession(decision: TranslatedDecision, callSid: string, from: string, to: string): Promise<KallglotSession> {
    const { config } = this.#d;
    // The other party is whom this call is dialled to when it is not translated: DIRECT_NUMBER, else the called number.
    const otherPartyUri = partyUri(config.telnyx.directNumber || to, config.telnyx.sipDomain);
    const call = { channel: 'texml' as const, callSid, from, to, otherPartyUri };
    return this.#d.kallglot.createSession(sessionRequest(decision, call, config.kallglot.requestStyle));
  }

  /** Relative URLs are resolved by Telnyx against the Voice URL, so they work without PUBLIC_BASE_URL. */
  #callbackUrl(path: string): string {
    const base = this.#d.config.http.publicBaseUrl.replace(/\/+$/, '');
    return base ? `${base}${path}` : path;
  }
}

function xml(body: string): HttpResponse {
  return { status: 200, body, contentType: TEXML_CONTENT_TYPE };
}
