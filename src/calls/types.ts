import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import type { SessionCreator } from '../sessions/request.ts';
import type { EndReason } from '../kallglot/types.ts';
import type { CallDirection } from './direction.ts';
import type { SipEngine } from '../sip/port.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { TrunkLimits } from './trunk-limits.ts';
import type { CallEnd, CallPatch, NewCall } from '../registry/port.ts';

/**
 * Where calls are recorded (the durable call registry). The call path never waits for these writes, except
 * commitNow before the outbound INVITE.
 */
export interface CallRecorder {
  callStarted(c: NewCall): unknown;
  update(callId: string, patch: CallPatch): unknown;
  callEnded(callId: string, end: CallEnd): unknown;
  /** Returns (SQLite) or resolves (a shared registry) once the writes so far are durable; never rejects. */
  commitNow?(): void | Promise<void>;
}

export type CallRoute = 'translated' | 'fallback' | 'bypass' | 'rejected';

/** Why the gateway itself hangs up an answered call, and the Kallglot end reason each one maps to. */
export const GATEWAY_HANGUPS = {
  max_call_duration: 'timeout',
  session_timer_expired: 'timeout',
  gateway_shutdown: 'completed',
  drain_timeout: 'completed',
  /** Delayed offer whose ACK brought no SDP answer: no media is possible. */
  no_sdp_answer: 'error',
} as const satisfies Record<string, EndReason>;
export type GatewayHangup = keyof typeof GATEWAY_HANGUPS;

export interface CallSummary {
  callId: string;
  route: CallRoute;
  fallbackReason?: string;
  sessionId?: string;
  telnyxUri?: string;
  rule: string;
  /** The Telnyx trunk the call went out on (`trunk_out`); absent on calls refused before routing. */
  trunkOut?: string;
  setupMs?: number;
  durationMs: number;
  endReason: string;
  sipStatus: number;
}

export interface CallDeps {
  config: GatewayConfig;
  logger: Logger;
  engine: SipEngine;
  kallglot: SessionCreator;
  sessionEnder: SessionEnder;
  /** The Telnyx trunks (`trunk_out`) and the CPS and concurrency limits every INVITE toward them passes. */
  trunks: TrunkLimits;
  /** Runs once per call, when its CallSession has finished (the summary says how). */
  onFinished(summary: CallSummary): void;
  /** outbound (default): from the PBX toward Telnyx; inbound: from Telnyx toward the PBX (PBX_URI_TEMPLATE). */
  direction?: CallDirection;
  hooks?: {
    /**
     * Must persist before it returns, or before the promise it returns resolves (a shared registry): the outbound
     * INVITE waits for it, so a crash cannot lose the session id.
     */
    sessionCreated?(callId: string, sessionId: string): void | Promise<void>;
    update?(callId: string, patch: { telnyxUri?: string; route?: string; answerAt?: number }): void;
  };
}
