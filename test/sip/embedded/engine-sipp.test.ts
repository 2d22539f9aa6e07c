/**
 * The embedded engine, in-process, against real SIPp: call setup and teardown in both roles, and CANCEL.
 * A tiny test application sits on the engine port (no gateway). Retransmissions, digest and bad input are in
 * engine-sipp-robustness.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { SipError, type Dialog, type DialogEnd, type InboundCall } from '../../../src/sip/port.ts';
import {
  received,
  SDP_ANSWER,
  SDP_OFFER,
  show,
  sippUacTo,
  sippUas,
  startEngine,
  TRANSPORTS,
  waitFor,
  within,
} from './engine-sipp-fixture.ts';

describe.each(TRANSPORTS)('engine UAS, SIPp UAC over %s', (transport) => {
  it('answers 5 calls with 180 + 200 and hangs each up itself after ~300 ms', async () => {
    const engine = await startEngine();
    const invites: InboundCall[] = [];
    const byes: Array<Promise<void>> = [];
    engine.onInvite((call) => {
      invites.push(call);
      call.sendProvisional(180);
      void call.answer({ body: SDP_ANSWER }).then((dialog) => {
        byes.push(new Promise((resolve) => setTimeout(() => resolve(dialog.bye()), 300)));
      });
    });
    const uac = await sippUacTo(engine, { scenario: 'uac-invite-200-expect-bye.xml', transport, calls: 5, rate: 20 });
    const r = await uac.done;
    expect(r.exitCode, show(r)).toBe(0);
    expect(invites).toHaveLength(5);
    expect(
      invites.every((c) => c.source.transport === transport),
      show(r),
    ).toBe(true);
    expect(received(r, /^SIP\/2\.0 180/).length, show(r)).toBeGreaterThanOrEqual(5);
    // The SDP answer reached the caller in every 200.
    const oks = received(r, /^SIP\/2\.0 200/, /INVITE/);
    expect(oks.length, show(r)).toBeGreaterThanOrEqual(5);
    expect(
      oks.every((m) => m.text.includes('o=engine 1 1')),
      show(r),
    ).toBe(true);
    await within(Promise.all(byes), 5000, 'the BYE transactions');
    expect(byes).toHaveLength(5);
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('reports a BYE from the caller as onEnd by remote', async () => {
    const engine = await startEngine();
    const ends: DialogEnd[] = [];
    engine.onInvite((call) => {
      void call.answer({ body: SDP_ANSWER }).then((dialog) => dialog.onEnd((end) => ends.push(end)));
    });
    const uac = await sippUacTo(engine, {
      scenario: 'uac-invite-200-then-bye.xml',
      transport,
      calls: 2,
      durationMs: 100,
    });
    const r = await uac.done;
    expect(r.exitCode, show(r)).toBe(0);
    await waitFor(() => ends.length === 2, 'two onEnd callbacks');
    expect(ends.map((e) => e.by)).toEqual(['remote', 'remote']);
    // The engine answered each BYE itself.
    expect(received(r, /^SIP\/2\.0 200/, /BYE/).length, show(r)).toBeGreaterThanOrEqual(2);
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('answers a CANCEL while ringing with 200 + 487 and tells the application', async () => {
    const engine = await startEngine();
    const cancelled: InboundCall[] = [];
    engine.onInvite((call) => {
      call.sendProvisional(180);
      call.onCancel(() => cancelled.push(call)); // never answered
    });
    const uac = await sippUacTo(engine, { scenario: 'uac-ring-cancel-expect-487.xml', transport, calls: 1 });
    const r = await uac.done;
    expect(r.exitCode, show(r)).toBe(0);
    await waitFor(() => cancelled.length === 1, 'onCancel');
    expect(cancelled[0]!.cancelled).toBe(true);
    expect(received(r, /^SIP\/2\.0 200/, /CANCEL/).length, show(r)).toBeGreaterThanOrEqual(1);
    expect(received(r, /^SIP\/2\.0 487/, /INVITE/).length, show(r)).toBeGreaterThanOrEqual(1);
    // A late answer from the application is refused rather than sent after the 487.
    await expect(cancelled[0]!.answer({ body: SDP_ANSWER })).rejects.toMatchObject({ status: 487 });
    expect(engine.stats().activeDialogs).toBe(0);
  });
});

describe.each(TRANSPORTS)('engine UAC, SIPp UAS over %s', (transport) => {
  it('gets a dialog with the UAS SDP answer and hangs up with BYE', async () => {
    const engine = await startEngine();
    const uas = await sippUas({ scenario: 'uas-answer-200-expect-bye.xml', transport, calls: 1 });
    const out = engine.invite({
      uri: `sip:test@127.0.0.1:${uas.port}`,
      from: { uri: 'sip:me@127.0.0.1' },
      body: SDP_OFFER,
      transport,
    });
    const provisionals: number[] = [];
    out.onProvisional((p) => provisionals.push(p.status));
    let dialog: Dialog;
    try {
      dialog = await within(out.result, 10_000, 'the dialog');
    } catch (err) {
      await uas.run.stop();
      throw new Error(`${String(err)}\n${show(await uas.run.done)}`);
    }
    expect(dialog.remoteBody.toString()).toContain('o=sipp-uas');
    expect(dialog.remoteContentType).toBe('application/sdp');
    expect(provisionals).toContain(180);
    expect(engine.stats().activeDialogs).toBe(1);
    await dialog.bye();
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(0);
    expect(dialog.ended).toBe(true);
    expect(engine.stats().activeDialogs).toBe(0);
    const invite = received(r, /^INVITE /)[0];
    expect(invite?.text, show(r)).toContain('o=engine-offer');
    expect(invite?.header('Via'), show(r)).toContain(
      `SIP/2.0/${transport.toUpperCase()} 127.0.0.1:${engine.localPort}`,
    );
  });

  it('cancels after the 180 and rejects the call with SipError 487', async () => {
    const engine = await startEngine();
    const uas = await sippUas({ scenario: 'uas-ring-expect-cancel-487.xml', transport, calls: 1 });
    const out = engine.invite({
      uri: `sip:test@127.0.0.1:${uas.port}`,
      from: { uri: 'sip:me@127.0.0.1' },
      body: SDP_OFFER,
      transport,
    });
    out.onProvisional((p) => {
      if (p.status === 180) out.cancel();
    });
    const err = await within(
      out.result.then(
        () => undefined,
        (e: unknown) => e,
      ),
      10_000,
      'the call result',
    );
    expect(err).toBeInstanceOf(SipError);
    expect((err as SipError).status).toBe(487);
    const r = await uas.run.done;
    expect(r.exitCode, show(r)).toBe(0);
    expect(received(r, /^CANCEL /).length, show(r)).toBeGreaterThanOrEqual(1);
    expect(received(r, /^BYE /), show(r)).toHaveLength(0);
    expect(engine.stats().activeDialogs).toBe(0);
  });
});
