/**
 * The drachtio adapter on the real drachtio-srf, over drachtio's TCP wire protocol, against the drachtio-server
 * double (test/support/drachtio-server/), with a scripted UDP peer on the SIP side. Covers what the e2e SIPp suites
 * cannot show: drachtio-srf's own PRACK of a reliable provisional, the headers of what set a dialog up
 * (remoteHeaders, read by the session timer), the body of a delayed-offer ACK, what answers a re-INVITE nobody
 * listens for, and the message counters.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config/load.ts';
import { createLogger } from '../../../src/logger.ts';
import { DrachtioEngine } from '../../../src/sip/drachtio/engine.ts';
import type { SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import type { HeaderList, InboundCall } from '../../../src/sip/port.ts';
import { DrachtioServerDouble } from '../../support/drachtio-server/server.ts';
import { RawPeer } from './raw-peer.ts';

const OFFER = 'v=0\r\no=peer 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n';
const ANSWER = 'v=0\r\no=gw 2 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n';

const stops: Array<() => unknown> = [];
afterEach(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

async function setup(secret = 's3cret') {
  const server = new DrachtioServerDouble({ secret: 's3cret' });
  await server.start();
  stops.push(() => server.stop());
  const config = loadConfig({
    env: {
      SIP_ENGINE: 'drachtio',
      DRACHTIO_HOST: '127.0.0.1',
      DRACHTIO_PORT: String(server.adminPort),
      DRACHTIO_SECRET: secret,
    },
  });
  const seen: Array<[string, string | number]> = [];
  const engine = new DrachtioEngine(config, createLogger('silent'), undefined, {
    sipMessage: (dir, what) => void seen.push([dir, what]),
  });
  const peer = await RawPeer.start();
  stops.push(() => peer.close());
  return { server, engine, peer, seen };
}

async function connected() {
  const s = await setup();
  await s.engine.start();
  stops.push(() => s.engine.stop());
  return s;
}

function header(list: HeaderList | undefined, name: string): string | undefined {
  return list?.find(([n]) => n.toLowerCase() === name.toLowerCase())?.[1];
}

describe('drachtio-srf against the drachtio-server double', () => {
  it('connects with the shared secret and refuses a wrong one', async () => {
    const good = await connected();
    expect(good.engine.localPort).toBe(good.server.sipPort);
    const bad = await setup('wrong');
    await expect(bad.engine.start()).rejects.toThrow(/failed to authenticate/);
  });

  it('PRACKs a reliable provisional by itself, and the 2xx headers reach the dialog', async () => {
    const { engine, peer, seen } = await connected();
    const out = engine.invite({
      uri: 'sip:+4930123@sip.telnyx.com',
      proxy: `127.0.0.1:${peer.port}`,
      from: { uri: 'sip:+4940999@gw.example.com' },
      body: Buffer.from(OFFER),
      contentType: 'application/sdp',
    });
    const invite = await peer.request('INVITE');
    expect(invite.body.toString()).toBe(OFFER);
    const reliable: HeaderList = [
      ['Require', '100rel'],
      ['RSeq', '1'],
      ['Contact', peer.contact],
    ];
    peer.reply(invite, 183, { toTag: 'peer1', headers: reliable, body: ANSWER });
    const prack = await peer.request('PRACK');
    expect(prack.headers.get('RAck')).toBe(`1 ${invite.headers.get('CSeq')}`);
    expect(prack.uri).toBe(`sip:peer@127.0.0.1:${peer.port}`);
    peer.reply(prack, 200);
    const timer: HeaderList = [
      ['Contact', peer.contact],
      ['Session-Expires', '1800;refresher=uac'],
      ['Require', 'timer'],
    ];
    peer.reply(invite, 200, { toTag: 'peer1', headers: timer, body: ANSWER });
    const dialog = await out.result;
    expect(header(dialog.remoteHeaders, 'Session-Expires')).toBe('1800;refresher=uac');
    expect(dialog.remoteBody.toString()).toBe(ANSWER);
    const ack = await peer.request('ACK');
    expect(ack.headers.get('CSeq')).toBe(invite.headers.get('CSeq')!.replace('INVITE', 'ACK'));
    expect(seen).toEqual(
      expect.arrayContaining([
        ['out', 'INVITE'],
        ['in', 183],
        ['out', 'PRACK'],
        ['in', 200],
        ['out', 'ACK'],
      ]),
    );
  });

  it('delayed offer: the ACK carries the answer given to dialog.ack, as SDP', async () => {
    const { engine, peer } = await connected();
    const out = engine.invite({
      uri: 'sip:+4930123@sip.telnyx.com',
      proxy: `127.0.0.1:${peer.port}`,
      from: { uri: 'sip:+4940999@gw.example.com' },
      deferAck: true,
    });
    const invite = await peer.request('INVITE');
    expect(invite.body.length).toBe(0);
    peer.reply(invite, 200, { toTag: 'peer2', headers: [['Contact', peer.contact]], body: OFFER });
    const dialog = await out.result;
    expect(dialog.remoteBody.toString()).toBe(OFFER);
    dialog.ack({ body: Buffer.from(ANSWER), contentType: 'application/sdp' });
    const ack = await peer.request('ACK');
    expect(ack.body.toString()).toBe(ANSWER);
    expect(ack.headers.get('Content-Type')).toBe('application/sdp');
  });
});

describe('an INVITE from the network through drachtio-srf', () => {
  async function answered() {
    const s = await connected();
    const calls: InboundCall[] = [];
    s.engine.onInvite((c) => calls.push(c));
    const dialogHeaders = {
      From: '<sip:+4940999@pbx.example.com>;tag=pbx1',
      To: `<sip:+4930123@127.0.0.1:${s.server.sipPort}>`,
      'Call-ID': `in-${s.peer.port}@pbx`,
      'Session-Expires': '1800;refresher=uac',
      Supported: 'timer',
    };
    const uri = `sip:+4930123@127.0.0.1:${s.server.sipPort}`;
    s.peer.send(s.peer.build('INVITE', uri, { ...dialogHeaders, CSeq: '1 INVITE' }, OFFER), s.server.sipPort);
    const trying = await s.peer.next('100 Trying', (m) => m.kind === 'response' && m.status === 100);
    expect(trying.headers.get('CSeq')).toBe('1 INVITE');
    await expect.poll(() => calls.length).toBe(1);
    const call = calls[0]!;
    expect(call.header('Session-Expires')).toBe('1800;refresher=uac');
    const answering = call.answer({ body: Buffer.from(ANSWER), headers: [['Session-Expires', '90;refresher=uac']] });
    const ok = (await s.peer.final('1 INVITE')) as SipResponse;
    expect(ok.status).toBe(200);
    expect(ok.headers.get('Session-Expires')).toBe('90;refresher=uac');
    const to = ok.headers.get('To')!;
    const ack = s.peer.build('ACK', ok.headers.get('Contact')!.replace(/^<|>$/g, ''), {
      ...dialogHeaders,
      To: to,
      CSeq: '1 ACK',
    });
    s.peer.send(ack, s.server.sipPort);
    const dialog = await answering;
    const inDialog = (method: string, seq: number, body?: string): SipRequest =>
      s.peer.build(
        method,
        ok.headers.get('Contact')!.replace(/^<|>$/g, ''),
        {
          ...dialogHeaders,
          To: to,
          CSeq: `${seq} ${method}`,
        },
        body,
      );
    return { ...s, dialog, inDialog };
  }

  it('hands over the INVITE headers as the dialog remoteHeaders, and answers BYE through drachtio-srf', async () => {
    const { dialog, peer, server, engine, inDialog } = await answered();
    expect(header(dialog.remoteHeaders, 'Session-Expires')).toBe('1800;refresher=uac');
    const ended = new Promise((resolve) => dialog.onEnd(resolve));
    peer.send(inDialog('BYE', 2), server.sipPort);
    expect((await peer.final('2 BYE')).kind === 'response' && (await ended)).toMatchObject({ by: 'remote' });
    const stats = engine.stats();
    // In: INVITE, ACK, BYE; out: the 200 to the INVITE and drachtio-srf's 200 to the BYE.
    expect(stats).toMatchObject({ messagesIn: 3, messagesOut: 2, activeDialogs: 0 });
    expect(server.dialogCount).toBe(0);
  });

  it("answers a re-INVITE nobody listens for 501 (never drachtio-srf's automatic 200 with old SDP)", async () => {
    const { dialog, peer, server, inDialog } = await answered();
    peer.send(inDialog('INVITE', 2, OFFER), server.sipPort);
    const refused = (await peer.final('2 INVITE')) as SipResponse;
    expect(refused.status).toBe(501);
    dialog.onRequest((req) => req.respond(200, { body: Buffer.from(OFFER.replace('o=peer', 'o=relayed')) }));
    peer.send(inDialog('INVITE', 3, OFFER), server.sipPort);
    const relayed = (await peer.final('3 INVITE')) as SipResponse;
    expect(relayed.status).toBe(200);
    expect(relayed.body.toString()).toContain('o=relayed');
  });
});
