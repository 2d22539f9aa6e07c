/**
 * Recording results against the call: TeXML recording status callbacks (form fields CallSid, RecordingUrl,
 * RecordingStatus) and Call Control `call.recording.saved` (payload.recording_urls). Telnyx's recording URLs expire
 * (about 10 minutes), so the URL is stored as received; fetching the file is a separate concern.
 */
import type { Maybe, RegistryPort } from '../registry/port.ts';
import { isObject } from '../json.ts';
import { str } from './payload.ts';
import type { Params } from './payload.ts';

export function recordRecording(
  registry: RegistryPort,
  callId: string,
  url: string | undefined,
  status: string,
): Maybe<void> {
  return registry.update(callId, { recordingStatus: status, ...(url ? { recordingUrl: url } : {}) });
}

/** Prefer the permanent public URL when Telnyx provides one, then mp3, then wav. */
export function recordingFromCallControl(payload: Record<string, unknown>): { url: string | undefined } {
  for (const key of ['public_recording_urls', 'recording_urls']) {
    const urls = payload[key];
    if (!isObject(urls)) continue;
    const url = str(urls.mp3) ?? str(urls.wav);
    if (url) return { url };
  }
  return { url: undefined };
}

export type RecordingResult = { callId: string; status: string; duplicate: boolean } | { error: string };

export async function texmlRecording(registry: RegistryPort, params: Params): Promise<RecordingResult> {
  const callId = params.CallSid;
  const status = (params.RecordingStatus ?? '').toLowerCase();
  if (!callId || !status) return { error: 'missing_call_sid_or_status' };
  const url = params.RecordingUrl || undefined;
  const key = `texml-recording:${callId}:${params.RecordingSid ?? ''}:${status}`;
  const fresh = await registry.addEvent(
    callId,
    `recording.${status}`,
    { status, url, recording_sid: params.RecordingSid },
    key,
  );
  if (fresh) await recordRecording(registry, callId, url, status);
  return { callId, status, duplicate: !fresh };
}
