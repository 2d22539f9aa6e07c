/**
 * The Call Control commands sent through the telnyx v7 SDK for calls that arrive on the Call Control application
 * (inbound.ts), and what both Call Control paths share (the stream parameters, logging SDK errors). Each command
 * carries a command_id made of the step and the call: Telnyx ignores a repeated command_id on a call, so a command
 * repeated after a lost response (the client's one retry) or for a redelivered webhook cannot act twice.
 */
import type Telnyx from 'telnyx';
import type { KallglotStream } from '../kallglot/types.ts';

type Actions = Telnyx['calls']['actions'];
type StartStreamingParams = Parameters<Actions['startStreaming']>[1];
type SpeakLanguage = NonNullable<Parameters<Actions['speak']>[1]['language']>;

/** A language tag shaped like the ones Telnyx speaks (de-DE, en-US, cmn-CN); Telnyx itself refuses unknown ones. */
const SPEAK_LANGUAGE = /^[a-z]{2,3}(-[A-Z]{2}(-[A-Z]{3})?)?$/;

/**
 * startStreaming toward a Kallglot session: both tracks, the stream token as Telnyx's stream_auth_token and, as the
 * TeXML `<Stream>` sends them, as the `token` and `session_id` parameters. The command_id is per session, so a
 * redelivered call.answered cannot start a second stream.
 */
export function streamingParams(sessionId: string, stream: KallglotStream): StartStreamingParams {
  return {
    stream_url: stream.url,
    stream_track: 'both_tracks',
    stream_auth_token: stream.token,
    custom_parameters: [
      { name: 'token', value: stream.token },
      { name: 'session_id', value: sessionId },
    ],
    command_id: `stream-${sessionId}`,
  };
}

export class CallCommands {
  readonly #actions: Actions;

  constructor(telnyx: Telnyx) {
    this.#actions = telnyx.calls.actions;
  }

  /** `step` separates the answer of a translated call from a fallback's, so a fallback answer is not ignored. */
  async answer(callControlId: string, clientState: string, step: 'answer' | 'fallback-answer'): Promise<void> {
    await this.#actions.answer(callControlId, { client_state: clientState, command_id: `${step}-${callControlId}` });
  }

  async reject(callControlId: string, cause: 'CALL_REJECTED' | 'USER_BUSY'): Promise<void> {
    await this.#actions.reject(callControlId, { cause, command_id: `reject-${callControlId}` });
  }

  async transfer(callControlId: string, to: string): Promise<void> {
    await this.#actions.transfer(callControlId, { to, command_id: `transfer-${callControlId}` });
  }

  async hangup(callControlId: string): Promise<void> {
    await this.#actions.hangup(callControlId, { command_id: `hangup-${callControlId}` });
  }

  /** The basic `female` voice: it speaks every language Telnyx lists, with no TTS provider to configure. */
  async speak(callControlId: string, text: string, language: string | undefined, clientState: string): Promise<void> {
    await this.#actions.speak(callControlId, {
      payload: text,
      voice: 'female',
      language: language && SPEAK_LANGUAGE.test(language) ? (language as SpeakLanguage) : 'en-US',
      client_state: clientState,
      command_id: `notice-${callControlId}`,
    });
  }

  async startStreaming(callControlId: string, sessionId: string, stream: KallglotStream): Promise<void> {
    await this.#actions.startStreaming(callControlId, streamingParams(sessionId, stream));
  }

  /** Both parties on their own channel, as the TeXML path records (`channels="dual"`). */
  async startRecording(callControlId: string): Promise<void> {
    await this.#actions.startRecording(callControlId, {
      channels: 'dual',
      format: 'mp3',
      command_id: `record-${callControlId}`,
    });
  }
}

/** SDK errors carry the response headers and body; log status and message only. */
export function describeTelnyxError(err: unknown): unknown {
  if (err instanceof Error) {
    const status = (err as { status?: unknown }).status;
    return { name: err.name, message: err.message, ...(typeof status === 'number' ? { status } : {}) };
  }
  return err;
}
