import Srf from 'drachtio-srf';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/logger.ts';
import { DrachtioEngine } from '../../../src/sip/drachtio/engine.ts';
import type { SrfLike } from '../../../src/sip/drachtio/srf-types.ts';
import {
  SipError,
  type Dialog,
  type InboundCall,
  type InDialogRequest,
  type OutboundInviteOptions,
} from '../../../src/sip/port.ts';
import {
  FakeDialog,
  FakeIncomingRequest,
  FakeMessage,
  FakeResponse,
  FakeSentRequest,
  FakeServerResponse,
  FakeSrf,
} from './fakes.ts';

// ---- helpers ----

const OFFER = 'v=0\r\no=pbx 1 1 IN IP4 10.1.2.3\r\ns=-\r\nc=IN IP4 10.1.2.3\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER =
  'v=0\r\no=telnyx 1 1 IN IP4 198.51.100.7\r\ns=-\r\nc=IN IP4 198.51.100.7\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

const config = loadConfig({
  env: {
    SIP_ENGINE: 'drachtio',
    DRACHTIO_HOST: '10.9.9.9',
    DRACHTIO_PORT: '9099',
    DRACHTIO_SECRET: 's3cret',
    SIP_PORT: '5080',
  },
});
const logger = createLogger('silent');
const tick = () => new Promise<void>((r) => setImmediate(r));

let fake: FakeSrf;
let engine: DrachtioEngine;
function newEngine(): DrachtioEngine {
  fake = new FakeSrf();
  engine = new DrachtioEngine(config, logger, () => fake as unknown as SrfLike);
  return engine;
}

function inboundInvite(): { req: FakeIncomingRequest; res: FakeServerResponse; call: InboundCall } {
  newEngine();
  let call: InboundCall | undefined;
  engine.onInvite((c) => (call = c));
  const req = new FakeIncomingRequest(
    'INVITE',
    'sip:+4930123@gw.example.com;user=phone',
    {
      'Call-ID': 'abc@pbx',
      From: '"Alice" <sip:+4940999@pbx.example.com>;tag=ft1',
      To: '<sip:+4930123@gw.example.com>',
      'Content-Type': 'application/sdp',
      'X-Agent': 'a42',
      Contact: '<sip:pbx@10.1.2.3:5070;transport=tcp>',
    },
    OFFER,
  );
  const res = new FakeServerResponse();
  fake.inviteHandler!(req, res);
  return { req, res, call: call! };
}

function outbound(extra: Partial<OutboundInviteOptions> = {}) {
  newEngine();
  const out = engine.invite({
    uri: 'sip:+4930123@sip.telnyx.com',
    proxy: 'sip.telnyx.com:5060',
    transport: 'tcp',
    from: { uri: 'sip:+4940999@sip.telnyx.com', displayName: 'Alice' },
    headers: [
      ['X-Agent', 'a42'],
      ['Via', 'SIP/2.0/UDP evil'],
      ['P-Asserted-Identity', '<sip:+4940999@pbx>'],
    ],
    body: Buffer.from(OFFER),
    contentType: 'application/sdp',
    auth: { username: 'gwuser', password: 'gwpass' },
    ...extra,
  });
  return { out, uac: fake.uac[0]! };
}

afterEach(() => {
  vi.useRealTimers();
});

// ---- tests ----

describe('DrachtioEngine lifecycle', () => {
  it('connects with the drachtio config, resolves on connect and disconnects on stop', async () => {
    newEngine();
    expect(engine.kind).toBe('drachtio');
    const started = engine.start();
    expect(fake.connectOpts).toEqual({ host: '10.9.9.9', port: 9099, secret: 's3cret' });
    fake.emit('connect', null, 'udp/192.0.2.1:5062,tcp/192.0.2.1:5062');
    await started;
    expect(engine.localPort).toBe(5062);
    const keepAlive = new FakeServerResponse();
    fake.optionsHandler!(new FakeIncomingRequest('OPTIONS', 'sip:gw', {}), keepAlive);
    expect(keepAlive.sent[0]).toMatchObject({ status: 200, opts: { headers: { Accept: 'application/sdp' } } });
    expect(keepAlive.sent[0]!.opts!.headers!.Allow).toMatch(/INVITE.*BYE/);
    await engine.stop();
    expect(fake.disconnects).toEqual([undefined]);
  });

  it('rejects start with a clear error when the connection fails, and stops reconnecting', async () => {
    newEngine();
    const started = engine.start();
    const failedSocket = { name: 'socket that never connected' };
    fake.emit('error', new Error('connect ECONNREFUSED 10.9.9.9:9099'), failedSocket);
    await expect(started).rejects.toThrow(/drachtio-server at 10\.9\.9\.9:9099.*ECONNREFUSED/);
    // closing that socket is what stops drachtio-srf's reconnect loop
    expect(fake.disconnects).toEqual([failedSocket]);
    // later errors (the fake keeps emitting, as drachtio-srf would) must not crash the process
    expect(() => fake.emit('error', new Error('again'))).not.toThrow();
  });

  it('rejects start when drachtio-server never answers', async () => {
    vi.useFakeTimers();
    newEngine();
    const started = engine.start();
    const assertion = expect(started).rejects.toThrow(/no connection within 5 s/);
    await vi.advanceTimersByTimeAsync(5_000);
    await assertion;
  });

  it('rejects start when the secret is refused', async () => {
    newEngine();
    const started = engine.start();
    fake.emit('connect', new Error('failed to authenticate to server'));
    await expect(started).rejects.toThrow(/failed to authenticate/);
  });
});

describe('DrachtioEngine inbound INVITE', () => {
  it('wraps the drachtio request as an InboundCall', () => {
    const { call } = inboundInvite();
    expect(call.callId).toBe('abc@pbx');
    expect(call.requestUri).toBe('sip:+4930123@gw.example.com;user=phone');
    expect(call.calledUser).toBe('+4930123');
    expect(call.callingUser).toBe('+4940999');
    expect(call.from).toBe('"Alice" <sip:+4940999@pbx.example.com>;tag=ft1');
    expect(call.to).toBe('<sip:+4930123@gw.example.com>');
    expect(call.source).toEqual({ transport: 'tcp', address: '10.1.2.3', port: 5070 });
    expect(call.body.toString()).toBe(OFFER);
    expect(call.contentType).toBe('application/sdp');
    expect(call.header('x-agent')).toBe('a42');
    expect(call.headers()).toContainEqual(['x-agent', 'a42']);
    expect(call.cancelled).toBe(false);
    expect(engine.stats().activeTransactions).toBe(1);
  });

  it('sends provisionals and a rejection through res.send, and nothing after the final', () => {
    const { call, res } = inboundInvite();
    call.sendProvisional(183, { reason: 'Session Progress', body: Buffer.from(ANSWER) });
    call.reject(486, {
      reason: 'Busy Here',
      headers: [
        ['Retry-After', '30'],
        ['Via', 'dropped'],
      ],
    });
    call.sendProvisional(180);
    call.reject(500);
    expect(res.sent).toEqual([
      {
        status: 183,
        reason: 'Session Progress',
        opts: { headers: { 'Content-Type': 'application/sdp' }, body: ANSWER },
      },
      { status: 486, reason: 'Busy Here', opts: { headers: { 'Retry-After': '30' }, body: undefined } },
    ]);
    expect(engine.stats().activeTransactions).toBe(0);
  });

  it("keeps the challenge of the gateway's own 407 (PBX digest authentication)", () => {
    const { call, res } = inboundInvite();
    call.reject(407, { headers: [['Proxy-Authenticate', 'Digest realm="gw", nonce="n1"']] });
    expect(res.sent).toEqual([
      { status: 407, opts: { headers: { 'Proxy-Authenticate': 'Digest realm="gw", nonce="n1"' }, body: undefined } },
    ]);
  });

  it('answers with createUAS carrying the SDP and resolves a Dialog once the ACK arrives', async () => {
    const { call, req, res } = inboundInvite();
    const answering = call.answer({ body: Buffer.from(ANSWER), headers: [['X-Session', 's1']] });
    await tick();
    const uas = fake.uas[0]!;
    expect(uas.req).toBe(req);
    expect(uas.res).toBe(res);
    expect(uas.opts).toEqual({ localSdp: ANSWER, headers: { 'X-Session': 's1', 'Content-Type': 'application/sdp' } });
    const dlg = new FakeDialog('abc@pbx', OFFER);
    uas.resolve(dlg);
    let settled = false;
    void answering.then(() => (settled = true));
    await tick();
    expect(settled).toBe(false); // 200 sent, ACK not seen yet
    dlg.emit('ack', new FakeIncomingRequest('ACK', 'sip:gw', {}));
    const dialog = await answering;
    expect(dialog.callId).toBe('abc@pbx');
    expect(dialog.remoteBody.toString()).toBe(OFFER);
    expect(dialog.remoteContentType).toBe('application/sdp');
    expect(dialog.ended).toBe(false);
    expect(engine.stats().activeDialogs).toBe(1);
    await expect(call.answer({})).rejects.toMatchObject({ status: 500 });
  });

  it('rejects answer with 408 when drachtio-server BYEs the dialog for a missing ACK', async () => {
    const { call } = inboundInvite();
    const answering = call.answer({ body: Buffer.from(ANSWER) });
    await tick();
    const dlg = new FakeDialog('abc@pbx', OFFER);
    fake.uas[0]!.resolve(dlg);
    await tick();
    const bye = new FakeIncomingRequest('BYE', 'sip:gw', { Reason: 'SIP;cause=408;text="ACK timeout"' });
    bye.source = 'application';
    dlg.emit('destroy', bye, 'ACK timeout');
    await expect(answering).rejects.toMatchObject({ status: 408 });
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('sees a BYE drachtio-srf handles in the same read as the 200 it answered (no promise turn in between)', async () => {
    const { call } = inboundInvite();
    const answering = call.answer({ body: Buffer.from(ANSWER) });
    await tick();
    const dlg = new FakeDialog('abc@pbx', OFFER);
    // drachtio-srf calls createUAS back and then, synchronously, dispatches the next message of the same read.
    fake.uas[0]!.resolve(dlg);
    dlg.emit('destroy', new FakeIncomingRequest('BYE', 'sip:gw', { Reason: 'Q.850;cause=16' }));
    const dialog = await answering;
    expect(dialog.ended).toBe(true);
    const end = await new Promise((resolve) => dialog.onEnd(resolve));
    expect(end).toMatchObject({ by: 'remote', reason: 'Q.850;cause=16' });
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('marks the call cancelled and calls onCancel on the cancel event; responses are then suppressed', async () => {
    const { call, req, res } = inboundInvite();
    const seen: Array<{ reason?: string }> = [];
    call.onCancel((c) => seen.push(c));
    req.emit('cancel', new FakeMessage({ Reason: 'SIP;cause=16;text="Normal"' }));
    expect(call.cancelled).toBe(true);
    expect(seen).toEqual([{ reason: 'SIP;cause=16;text="Normal"' }]);
    call.reject(503);
    call.sendProvisional(180);
    expect(res.sent).toEqual([]); // drachtio-server already answered 487
    await expect(call.answer({})).rejects.toMatchObject({ status: 487 });
    const late: unknown[] = [];
    call.onCancel((c) => late.push(c));
    await tick();
    expect(late).toHaveLength(1);
    expect(engine.stats().activeTransactions).toBe(0);
  });

  it('answers 481 to an INVITE with a To-tag that matched no dialog', () => {
    newEngine();
    const handler = vi.fn();
    engine.onInvite(handler);
    const res = new FakeServerResponse();
    fake.inviteHandler!(
      new FakeIncomingRequest('INVITE', 'sip:x@gw', { To: '<sip:x@gw>;tag=zz', 'Call-ID': 'c' }),
      res,
    );
    expect(handler).not.toHaveBeenCalled();
    expect(res.sent[0]).toMatchObject({ status: 481 });
  });
});

describe('DrachtioEngine outbound INVITE', () => {
  it('passes URI, proxy, auth, headers and SDP to createUAC and relays provisionals', async () => {
    const { out, uac } = outbound();
    expect(uac.uri).toBe('sip:+4930123@sip.telnyx.com');
    expect(uac.opts).toEqual({
      headers: {
        'X-Agent': 'a42',
        'P-Asserted-Identity': '<sip:+4940999@pbx>',
        From: '"Alice" <sip:+4940999@sip.telnyx.com>',
        To: '<sip:+4930123@sip.telnyx.com>',
        'Content-Type': 'application/sdp',
      },
      localSdp: OFFER,
      proxy: 'sip:sip.telnyx.com:5060;transport=tcp',
      auth: { username: 'gwuser', password: 'gwpass' },
    });
    const provisionals: Array<{ status: number; reason: string; body: string; contentType?: string }> = [];
    out.onProvisional((p) =>
      provisionals.push({ status: p.status, reason: p.reason, body: p.body.toString(), contentType: p.contentType }),
    );
    const sent = new FakeSentRequest({ 'Call-ID': 'out-1@gw' });
    uac.callbacks.cbRequest(null, sent);
    expect(out.callId).toBe('out-1@gw');
    uac.callbacks.cbProvisional(new FakeResponse(100, 'Trying'));
    uac.callbacks.cbProvisional(
      new FakeResponse(183, 'Session Progress', { 'Content-Type': 'application/sdp' }, ANSWER),
    );
    expect(provisionals).toEqual([
      { status: 183, reason: 'Session Progress', body: ANSWER, contentType: 'application/sdp' },
    ]);

    const dlg = new FakeDialog('out-1@gw', ANSWER);
    dlg.res = new FakeResponse(200, 'OK', { 'Content-Type': 'application/sdp', 'Session-Expires': '90' }, ANSWER);
    uac.resolve(dlg);
    const dialog = await out.result;
    expect(dialog.remoteBody.toString()).toBe(ANSWER);
    expect(dialog.remoteContentType).toBe('application/sdp');
    // The 2xx's headers reach the call logic (its session timer answer reads Session-Expires there).
    expect(dialog.remoteHeaders).toEqual([
      ['content-type', 'application/sdp'],
      ['session-expires', '90'],
    ]);
    // In: 100, 183, 200; out: the INVITE and drachtio-srf's ACK.
    expect(engine.stats()).toMatchObject({ activeDialogs: 1, activeTransactions: 0, messagesIn: 3, messagesOut: 2 });
  });

  it('selects TCP through the Request-URI when there is no proxy', () => {
    const { uac } = outbound({ proxy: undefined });
    expect(uac.uri).toBe('sip:+4930123@sip.telnyx.com;transport=tcp');
    expect(uac.opts.proxy).toBeUndefined();
  });

  it('turns a createUAC rejection with status 486 into SipError 486 with the response headers', async () => {
    const { out, uac } = outbound();
    // drachtio-srf's real SipError (its .d.ts does not declare the static), with the failing response attached as
    // createUAC does.
    const { SipError: SrfSipError } = Srf as unknown as { SipError: new (status: number, reason?: string) => Error };
    const err = new SrfSipError(486, 'Busy Here') as Error & { res?: FakeResponse };
    err.res = new FakeResponse(486, 'Busy Here', { 'Retry-After': '60' });
    uac.reject(err);
    const failure = await out.result.catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(SipError);
    expect(failure).toMatchObject({ status: 486, reason: 'Busy Here' });
    expect((failure as SipError).header('Retry-After')).toBe('60');
  });

  it('maps a non-SIP failure (no drachtio connection) to 503', async () => {
    const { out, uac } = outbound();
    uac.reject(new Error('provided socket has been destroyed'));
    await expect(out.result).rejects.toMatchObject({ status: 503 });
  });

  it('sends the CANCEL once cbRequest delivers the request when cancel() came first', async () => {
    const { out, uac } = outbound();
    out.cancel({
      headers: [
        ['Reason', 'SIP;cause=487;text="Caller cancelled"'],
        ['X-Drop', 'no'],
        ['Contact', 'x'],
      ],
    });
    await expect(out.result).rejects.toMatchObject({ status: 487 });
    const sent = new FakeSentRequest({ 'Call-ID': 'out-2@gw' });
    uac.callbacks.cbRequest(null, sent);
    expect(sent.cancels).toEqual([{ headers: { Reason: 'SIP;cause=487;text="Caller cancelled"', 'X-Drop': 'no' } }]);
    out.cancel();
    expect(sent.cancels).toHaveLength(1);
  });

  it('cancels right away when the request is already known', () => {
    const { out, uac } = outbound();
    const sent = new FakeSentRequest({ 'Call-ID': 'out-3@gw' });
    uac.callbacks.cbRequest(null, sent);
    uac.callbacks.cbProvisional(new FakeResponse(180, 'Ringing'));
    out.cancel();
    expect(sent.cancels).toEqual([{ headers: {} }]);
  });

  it('leaves a 2xx that crossed its CANCEL to drachtio-server, which ACKs and BYEs it (doAckBye)', async () => {
    const { out, uac } = outbound();
    const sent = new FakeSentRequest({ 'Call-ID': 'out-4@gw' });
    uac.callbacks.cbRequest(null, sent);
    out.cancel();
    expect(sent.cancels).toHaveLength(1);
    const dlg = new FakeDialog('out-4@gw', ANSWER);
    uac.resolve(dlg);
    await tick();
    expect(dlg.destroys).toEqual([]);
    await expect(out.result).rejects.toMatchObject({ status: 487 });
    expect(engine.stats().activeDialogs).toBe(0);
  });

  it('BYEs a 2xx to an INVITE given up before any CANCEL could go out', async () => {
    const { out, uac } = outbound();
    out.cancel(); // before cbRequest: no request to CANCEL yet
    const dlg = new FakeDialog('out-4b@gw', ANSWER);
    uac.resolve(dlg);
    await tick();
    expect(dlg.destroys).toEqual([{ headers: { Reason: 'SIP;cause=487;text="Request Terminated"' } }]);
    await expect(out.result).rejects.toMatchObject({ status: 487 });
  });

  it('gives up with 408 and cancels when the ring timeout expires', async () => {
    vi.useFakeTimers();
    const { out, uac } = outbound({ timeoutMs: 20_000 });
    const sent = new FakeSentRequest({ 'Call-ID': 'out-5@gw' });
    uac.callbacks.cbRequest(null, sent);
    const failure = out.result.catch((e: unknown) => e);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(await failure).toMatchObject({ status: 408 });
    expect(sent.cancels).toHaveLength(1);
  });

  it('sends an INVITE without an offer with noAck and completes the ACK itself', async () => {
    const { out, uac } = outbound({ body: undefined });
    expect(uac.opts.noAck).toBe(true);
    expect(uac.opts.localSdp).toBeUndefined();
    expect(uac.opts.headers['Content-Type']).toBeUndefined();
    const dlg = new FakeDialog('out-6@gw', ANSWER);
    const ack = vi.fn(async () => dlg);
    uac.resolve({ sdp: ANSWER, ack, res: new FakeResponse(200, 'OK', { 'Content-Type': 'application/sdp' }, ANSWER) });
    const dialog = await out.result;
    expect(ack).toHaveBeenCalledWith();
    expect(dialog.callId).toBe('out-6@gw');
  });
});

describe('DrachtioEngine dialogs', () => {
  async function answeredOutbound(): Promise<{ dialog: Dialog; dlg: FakeDialog }> {
    const { out, uac } = outbound();
    const dlg = new FakeDialog('out-7@gw', ANSWER);
    uac.resolve(dlg);
    return { dialog: await out.result, dlg };
  }

  it("ends with by 'remote' and the BYE's Reason on 'destroy'", async () => {
    const { dialog, dlg } = await answeredOutbound();
    const ends: unknown[] = [];
    dialog.onEnd((e) => ends.push(e));
    dlg.emit(
      'destroy',
      new FakeIncomingRequest('BYE', 'sip:gw', { Reason: 'Q.850;cause=16', 'X-Why': 'hangup' }),
      'normal release',
    );
    expect(dialog.ended).toBe(true);
    expect(ends).toEqual([
      {
        by: 'remote',
        reason: 'Q.850;cause=16',
        headers: [
          ['reason', 'Q.850;cause=16'],
          ['x-why', 'hangup'],
        ],
      },
    ]);
    expect(engine.stats().activeDialogs).toBe(0);
    await expect(dialog.request('INFO')).rejects.toMatchObject({ status: 481 });
  });

  it("hands a re-INVITE ('modify') to onRequest as INVITE and answers through res.send", async () => {
    const { dialog, dlg } = await answeredOutbound();
    const got: InDialogRequest[] = [];
    dialog.onRequest((r) => got.push(r));
    const req = new FakeIncomingRequest(
      'INVITE',
      'sip:gw',
      { 'Content-Type': 'application/sdp', 'X-Hold': '1' },
      OFFER,
    );
    const res = new FakeServerResponse();
    dlg.emit('modify', req, res);
    expect(got).toHaveLength(1);
    expect(got[0]!.method).toBe('INVITE');
    expect(got[0]!.body.toString()).toBe(OFFER);
    expect(got[0]!.header('X-Hold')).toBe('1');
    got[0]!.respond(200, { body: Buffer.from(ANSWER), headers: [['X-Relayed', 'yes']] });
    got[0]!.respond(500);
    expect(res.sent).toEqual([
      {
        status: 200,
        opts: {
          headers: { 'X-Relayed': 'yes', Contact: '<sip:gw@192.0.2.1:5060>', 'Content-Type': 'application/sdp' },
          body: ANSWER,
        },
      },
    ]);
  });

  it('maps the other in-dialog events to their methods and answers 501 without a handler', async () => {
    const { dialog, dlg } = await answeredOutbound();
    const unanswered = new FakeServerResponse();
    dlg.emit('info', new FakeIncomingRequest('INFO', 'sip:gw', {}), unanswered);
    expect(unanswered.sent[0]).toMatchObject({ status: 501 });
    const methods: string[] = [];
    dialog.onRequest((r) => methods.push(r.method));
    for (const ev of ['info', 'update', 'refer', 'notify', 'message', 'options'])
      dlg.emit(ev, new FakeIncomingRequest('X', 'sip:gw', {}), new FakeServerResponse());
    expect(methods).toEqual(['INFO', 'UPDATE', 'REFER', 'NOTIFY', 'MESSAGE', 'OPTIONS']);
  });

  it('sends in-dialog requests with dialog.request and resolves on the final response', async () => {
    const { dialog, dlg } = await answeredOutbound();
    const pending = dialog.request('INVITE', { body: Buffer.from(OFFER), headers: [['X-Hold', '1']] });
    const { opts, cb } = dlg.requests[0]!;
    expect(opts).toEqual({
      method: 'INVITE',
      headers: { 'X-Hold': '1', 'Content-Type': 'application/sdp' },
      body: OFFER,
    });
    cb(null, new FakeResponse(100, 'Trying'));
    cb(null, new FakeResponse(200, 'OK', { 'Content-Type': 'application/sdp', 'X-Far': 'z' }, ANSWER));
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.reason).toBe('OK');
    expect(res.body.toString()).toBe(ANSWER);
    expect(res.contentType).toBe('application/sdp');
    expect(res.header('x-far')).toBe('z');
  });

  it('bye() destroys the drachtio dialog once and ends with by local', async () => {
    const { dialog, dlg } = await answeredOutbound();
    const ends: unknown[] = [];
    dialog.onEnd((e) => ends.push(e));
    await dialog.bye({ headers: [['Reason', 'SIP;cause=200;text="done"']] });
    await dialog.bye();
    expect(dlg.destroys).toEqual([{ headers: { Reason: 'SIP;cause=200;text="done"' } }]);
    expect(ends).toEqual([{ by: 'local', headers: [['Reason', 'SIP;cause=200;text="done"']] }]);
    expect(dialog.ended).toBe(true);
    expect(engine.stats().activeDialogs).toBe(0);
  });
});
