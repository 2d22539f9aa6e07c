/**
 * End to end with real SIPp: mid-call requests from the PBX cross the gateway to Telnyx and the answers come back.
 * The PBX puts the translated call on hold (re-INVITE a=sendonly), sends a DTMF digit by SIP INFO, resumes
 * (re-INVITE a=sendrecv) and hangs up.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  TRANSLATED_NUMBER,
  bodyOf,
  findMessages,
  headerOf,
  startE2e,
  waitFor,
  type E2eEnv,
  type LoggedMessage,
  unique,
} from './harness.ts';

let env: E2eEnv | undefined;
afterEach(async () => {
  await env?.teardown();
  env = undefined;
});

function direction(body: string): string | undefined {
  return /^a=(sendrecv|sendonly|recvonly|inactive)\s*$/m.exec(body)?.[1];
}

describe('re-INVITE hold/resume and INFO from the PBX', () => {
  it.each(['udp', 'tcp'] as const)(
    'relays both re-INVITEs and the INFO to Telnyx and the 200s back (PBX over %s)',
    async (transport) => {
      const e = (env = await startE2e());
      const uas = e.sipp({ scenario: 'uas-answer-reinvites.xml', localPort: e.uasPort, calls: 1, timeoutSec: 15 });
      await uas.ready;
      const uacRun = e.sipp({
        scenario: 'uac-reinvite-hold-resume.xml',
        remote: `127.0.0.1:${e.gw.sipPort}`,
        localPort: e.uacPort,
        transport,
        service: TRANSLATED_NUMBER,
        calls: 1,
        durationMs: 100,
        timeoutSec: 15,
      });
      const uac = await uacRun.done;
      if (uac.exitCode !== 0) setTimeout(() => void uas.stop(), 1000);
      const s = await uas.done;
      const d = () => e.diag(uac, s);
      expect(uac.exitCode, d()).toBe(0);
      expect(s.exitCode, d()).toBe(0);

      // Telnyx side: the initial INVITE, then hold and resume inside the dialog (To carries the tag).
      const invites = unique(findMessages(s.messages, 'received', 'INVITE '));
      expect(invites, d()).toHaveLength(3);
      const [initial, hold, resume] = invites as [LoggedMessage, LoggedMessage, LoggedMessage];
      const session = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions()[0], 10_000, d);
      expect(initial.startLine, d()).toBe(`INVITE sip:${session.id}@sip.telnyx.com SIP/2.0`);
      expect(headerOf(initial.text, 'X-Kallglot-Session-Id'), d()).toBe(session.id);
      expect(direction(bodyOf(initial.text)), d()).toBe('sendrecv');
      for (const re of [hold, resume]) {
        expect(re.startLine, d()).toMatch(/^INVITE sip:uas@127\.0\.0\.1:\d+/); // sent to the UAS Contact
        expect(headerOf(re.text, 'To'), d()).toMatch(/;tag=/);
        expect(headerOf(re.text, 'Content-Type'), d()).toBe('application/sdp');
      }
      expect(direction(bodyOf(hold.text)), d()).toBe('sendonly');
      expect(bodyOf(hold.text), d()).toMatch(/^o=sipp-uac 53655765 2 /m);
      expect(direction(bodyOf(resume.text)), d()).toBe('sendrecv');
      expect(bodyOf(resume.text), d()).toMatch(/^o=sipp-uac 53655765 3 /m);
      // The gateway's own CSeq toward Telnyx grows within its dialog.
      const cseqs = invites.map((m) => Number(headerOf(m.text, 'CSeq')!.split(/\s+/)[0]));
      expect(cseqs[1]! > cseqs[0]! && cseqs[2]! > cseqs[1]!, `${JSON.stringify(cseqs)}\n${d()}`).toBe(true);
      // Each re-INVITE's 2xx is ACKed by the gateway (initial + 2 re-INVITEs).
      expect(unique(findMessages(s.messages, 'received', 'ACK ')), d()).toHaveLength(3);

      // DTMF INFO reaches Telnyx with its body and type.
      const infos = unique(findMessages(s.messages, 'received', 'INFO '));
      expect(infos, d()).toHaveLength(1);
      expect(headerOf(infos[0]!.text, 'Content-Type'), d()).toBe('application/dtmf-relay');
      expect(bodyOf(infos[0]!.text), d()).toMatch(/^Signal=5\nDuration=160$/);

      // PBX side: the answers Telnyx gave come back, SDP direction included.
      const okFor = (cseq: string) =>
        findMessages(uac.messages, 'received', 'SIP/2.0 200').find((m) => headerOf(m.text, 'CSeq') === cseq);
      expect(direction(bodyOf(okFor('2 INVITE')?.text ?? '')), d()).toBe('recvonly');
      expect(bodyOf(okFor('2 INVITE')?.text ?? ''), d()).toMatch(/^o=sipp-uas 53655765 2 /m);
      expect(okFor('3 INFO'), d()).toBeDefined();
      expect(direction(bodyOf(okFor('4 INVITE')?.text ?? '')), d()).toBe('sendrecv');
      expect(bodyOf(okFor('4 INVITE')?.text ?? ''), d()).toMatch(/^o=sipp-uas 53655765 3 /m);
      expect(okFor('5 BYE'), d()).toBeDefined();

      const relayed = e.gw.logs
        .filter((l) => l.msg === 'relaying in-dialog request')
        .map((l) => `${String(l.method)} ${String(l.direction)}`);
      expect(relayed, d()).toEqual(['INVITE pbx->telnyx', 'INFO pbx->telnyx', 'INVITE pbx->telnyx']);

      // The call still ends normally: one session, ended once by the PBX's BYE.
      expect(e.sandbox.stats().created, d()).toBe(1);
      expect(session.endReason, d()).toBe('agent_hangup');
      const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
      expect(summary, d()).toMatchObject({
        route: 'translated',
        sessionId: session.id,
        telnyxUri: `sip:${session.id}@sip.telnyx.com`,
        endReason: 'bye_from_pbx',
        sipStatus: 200,
      });
      expect(summary.fallbackReason, d()).toBeUndefined();
      await new Promise((res) => setTimeout(res, 300));
      expect(e.sandbox.sessions()[0]!.endCalls, d()).toBe(1);
    },
    60_000,
  );
});
