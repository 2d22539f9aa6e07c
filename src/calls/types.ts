import type { GatewayConfig } from '../config/load.ts';
import type { Logger } from '../logger.ts';
import type { SessionCreator } from '../sessions/request.ts';
import type { EndReason } from '../kallglot/types.ts';
import type { CallDirection } from './direction.ts';
import type { SipEngine } from '../sip/port.ts';
import type { SessionEnder } from '../sessions/ender.ts';
import type { CallPatch, NewCall } from '../registry/call-registry.ts';

/** Where calls are recorded (the durable call registry). */
export interface CallRecorder {
  callStarted(c: NewCall): boolean;
  update(callId: string, patch: CallPatch): void;
  callEnded(
    callId: string,
    end: {
      reason: string;
      sipStatus?: number;
      route?: string;
      fallbackReason?: string;
      sessionId?: string;
      telnyxUri?: string;
      rule?: string;
    },
  ): boolean;
  commitNow?(): void;
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
  /** Runs once per call, when its CallSession has finished (the summary says how). */
  onFinished(summary: CallSummary): void;
  /** outbound (default): from the PBX toward Telnyx; inbound: from Telnyx toward the PBX (PBX_URI_TEMPLATE). */
  direction?: CallDirection;
  hooks?: {
    /** Must persist synchronously: it runs before the outbound INVITE so a crash cannot lose the session id. */
    sessionCreated?(callId: string, sessionId: string): void;
    update?(callId: string, patch: { telnyxUri?: string; route?: string; answerAt?: number }): void;
  };
}
