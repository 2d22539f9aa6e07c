/**
 * Embedded engines over loopback UDP, both ends ours so timing is exact: in-dialog INVITE glare (RFC 3261 §14), a
 * normal re-INVITE afterwards, and INVITEs that are odd but must still be answered.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import type { Dialog } from '../../../src/sip/port.ts';
import { TEST_SDP, loopbackEngine } from './loopback-engine.ts';

const SDP = TEST_SDP;
const engines: EmbeddedEngine[] = [];

function engine(): EmbeddedEngine {
  const e = loopbackEngine();
  engines.push(e);
  return e;
}

afterEach(async () => {
  for (const e of engines.splice(0)) await e.stop();
});

/** Answer in-dialog requests after `delayMs`, with an SDP body for INVITEs. */
function answerSlowly(d: Dialog, delayMs: number, seen: string[]): void {
  d.onRequest((req) => {
    seen.push(req.method);
    setTimeout(
      () => req.respond(200, req.method === 'INVITE' ? { body: SDP, contentType: 'application/sdp' } : {}),
      delayMs,
    );
  });
}

describe('embedded dialogs: re-INVITE glare', () => {
  it('answers 491 to crossing re-INVITEs and accepts the next one', async () => {
    const a = engine();
    const b = engine();
    await a.start();
    await b.start();
    const bDialog = new Promise<Dialog>((resolve) =>
      b.onInvite((call) => void call.answer({ body: SDP, contentType: 'application/sdp' }).then(resolve)),
    );
    const aDialog = await a.invite({
      uri: `sip:test@127.0.0.1:${b.localPort}`,
      from: { uri: 'sip:a@127.0.0.1' },
      body: SDP,
      contentType: 'application/sdp',
    }).result;
    const bd = await bDialog;
    const seenA: string[] = [];
    const seenB: string[] = [];
    answerSlowly(aDialog, 200, seenA);
    answerSlowly(bd, 200, seenB);

    // Both sides re-INVITE at once: each receives the other's while its own is pending → 491 both ways.
    const [ra, rb] = await Promise.all([
      aDialog.request('INVITE', { body: SDP, contentType: 'application/sdp' }),
      bd.request('INVITE', { body: SDP, contentType: 'application/sdp' }),
    ]);
    expect([ra.status, rb.status]).toEqual([491, 491]);
    expect(seenA).toEqual([]); // the crossing requests never reached the applications
    expect(seenB).toEqual([]);

    // After the glare, one side's re-INVITE goes through normally.
    const again = await aDialog.request('INVITE', { body: SDP, contentType: 'application/sdp' });
    expect(again.status).toBe(200);
    expect(seenB).toEqual(['INVITE']);

    // While our own re-INVITE is pending, we refuse to start another one ourselves.
    const pending = aDialog.request('INVITE', { body: SDP, contentType: 'application/sdp' });
    await expect(aDialog.request('INVITE', { body: SDP, contentType: 'application/sdp' })).rejects.toMatchObject({
      status: 491,
    });
    expect((await pending).status).toBe(200);
    await aDialog.bye();
  });
});

describe('embedded UAS: odd but answerable INVITEs', () => {
  it('answers an INVITE whose Contact cannot be parsed (the 200 still goes out)', async () => {
    const { createSocket } = await import('node:dgram');
    const b = engine();
    await b.start();
    b.onInvite((call) => void call.answer({ body: SDP, contentType: 'application/sdp' }).catch(() => undefined));
    const sock = createSocket('udp4');
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const port = sock.address().port;
    const replies: string[] = [];
    sock.on('message', (m) => replies.push(m.toString('utf8')));
    const invite = [
      `INVITE sip:+4930@127.0.0.1:${b.localPort} SIP/2.0`,
      `Via: SIP/2.0/UDP 127.0.0.1:${port};branch=z9hG4bKbadcontact1`,
      'Max-Forwards: 70',
      'From: <sip:pbx@127.0.0.1>;tag=t1',
      `To: <sip:+4930@127.0.0.1:${b.localPort}>`,
      'Call-ID: bad-contact-1@test',
      'CSeq: 1 INVITE',
      'Contact: <<<not a uri',
      'Content-Length: 0',
      '',
      '',
    ].join('\r\n');
    sock.send(invite, b.localPort, '127.0.0.1');
    const deadline = Date.now() + 3000;
    while (!replies.some((r) => r.startsWith('SIP/2.0 200')) && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    sock.close();
    expect(replies.some((r) => r.startsWith('SIP/2.0 200'))).toBe(true);
  });
});
