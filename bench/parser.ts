/**
 * SIP parser and serializer throughput on a typical INVITE with SDP, in-process (the engine's per-message cost
 * without sockets or timers).
 */
import { performance } from 'node:perf_hooks';
import { parseMessage } from '../src/sip/embedded/parser.ts';
import { serializeMessage } from '../src/sip/embedded/serialize.ts';

const INVITE = Buffer.from(
  [
    'INVITE sip:+4930123456@192.0.2.10:5060 SIP/2.0',
    'Via: SIP/2.0/UDP 192.0.2.20:5060;branch=z9hG4bK776asdhds;rport',
    'Max-Forwards: 70',
    'To: <sip:+4930123456@192.0.2.10>',
    'From: "Alice Agent" <sip:+15551234567@192.0.2.20>;tag=1928301774',
    'Call-ID: a84b4c76e66710@pc33.example.com',
    'CSeq: 314159 INVITE',
    'Contact: <sip:alice@192.0.2.20:5060>',
    'P-Asserted-Identity: <sip:+15551234567@192.0.2.20>',
    'X-Kallglot-Languages: de-en',
    'Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, UPDATE, INFO',
    'Content-Type: application/sdp',
    '',
    '',
  ].join('\r\n') +
    [
      'v=0',
      'o=alice 2890844526 2890844526 IN IP4 192.0.2.20',
      's=-',
      'c=IN IP4 192.0.2.20',
      't=0 0',
      'm=audio 49170 RTP/AVP 0 8 101',
      'a=rtpmap:0 PCMU/8000',
      'a=rtpmap:8 PCMA/8000',
      'a=rtpmap:101 telephone-event/8000',
      '',
    ].join('\r\n'),
);

export function parserBench(): void {
  const n = 100_000;
  for (let i = 0; i < 5000; i++) parseMessage(INVITE);
  let t = performance.now();
  let msg: ReturnType<typeof parseMessage> | undefined;
  for (let i = 0; i < n; i++) msg = parseMessage(INVITE);
  const parseMs = performance.now() - t;
  if (!msg?.ok) throw new Error('bench message did not parse');
  t = performance.now();
  for (let i = 0; i < n; i++) serializeMessage(msg.message);
  const serMs = performance.now() - t;
  console.log(
    `parser:     ${Math.round(n / (parseMs / 1000)).toLocaleString()} INVITEs/s (${((parseMs * 1000) / n).toFixed(2)} µs each, ${INVITE.length} bytes)`,
  );
  console.log(
    `serializer: ${Math.round(n / (serMs / 1000)).toLocaleString()} INVITEs/s (${((serMs * 1000) / n).toFixed(2)} µs each)`,
  );
}
