/**
 * The TeXML documents the voice webhook answers with. Built with xmlbuilder2 so every attribute and text value is
 * escaped (stream URLs carry `&`, greetings are operator text, numbers come from the caller).
 *
 * Recording uses `<Start><Recording …/></Start>`, not `<Record>`: in TeXML `<Record>` is a blocking verb (it records
 * until silence, finishOnKey or maxLength, then continues), so placed before `<Connect>` it would hold the caller in
 * a recording prompt instead of connecting the translation. `<Start><Recording>` records the whole call in the
 * background and carries `recordingStatusCallback` / `recordingStatusCallbackEvent`.
 */
import { createRequire } from 'node:module';
import type { create as createDocument } from 'xmlbuilder2';

type XMLBuilder = ReturnType<typeof createDocument>;

/**
 * xmlbuilder2 is loaded on the first TeXML answer, not at import: it adds ~18 MiB of RSS to every daemon, and a
 * SIP-only gateway never answers a voice webhook.
 */
const requireOnDemand = createRequire(import.meta.url);
let create: typeof createDocument | undefined;

export const TEXML_CONTENT_TYPE = 'application/xml';

export interface Greeting {
  text: string;
  language: string;
}

export interface StreamTexml {
  greeting?: Greeting | undefined;
  /** Absolute (or relative to the voice URL) recording status callback; absent: no recording. */
  recordingCallback?: string | undefined;
  streamUrl: string;
  token: string;
  sessionId: string;
}

const UNAVAILABLE_TEXT = 'Translation is currently unavailable. Connecting you directly.';

function doc(): XMLBuilder {
  create ??= (requireOnDemand('xmlbuilder2') as { create: typeof createDocument }).create;
  return create({ version: '1.0', encoding: 'UTF-8' }).ele('Response');
}

function end(root: XMLBuilder): string {
  return root.end({ prettyPrint: false });
}

function say(root: XMLBuilder, text: string, language?: string): void {
  root.ele('Say', language ? { language } : {}).txt(text);
}

/** Translated call: optional greeting, optional background recording, then the media stream to Kallglot. */
export function streamTexml(o: StreamTexml): string {
  const root = doc();
  if (o.greeting) say(root, o.greeting.text, o.greeting.language);
  if (o.recordingCallback) {
    root.ele('Start').ele('Recording', {
      recordingStatusCallback: o.recordingCallback,
      recordingStatusCallbackMethod: 'POST',
      recordingStatusCallbackEvent: 'completed',
      channels: 'dual',
    });
  }
  const stream = root.ele('Connect').ele('Stream', { url: o.streamUrl, track: 'both_tracks' });
  stream.ele('Parameter', { name: 'token', value: o.token });
  stream.ele('Parameter', { name: 'session_id', value: o.sessionId });
  return end(root);
}

/** Untranslated: dial the direct number. With `unavailable`, first tell the caller translation is down. */
export function dialTexml(number: string, opts: { unavailable?: boolean; language?: string | undefined } = {}): string {
  const root = doc();
  if (opts.unavailable) say(root, UNAVAILABLE_TEXT, opts.language);
  root.ele('Dial').txt(number);
  return end(root);
}

export function rejectBusyTexml(): string {
  const root = doc();
  root.ele('Reject', { reason: 'busy' });
  return end(root);
}

/** Nothing sensible to do with the call (no number to dial): hang up rather than leave it in silence. */
export function hangupTexml(): string {
  const root = doc();
  root.ele('Hangup');
  return end(root);
}
