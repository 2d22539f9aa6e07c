import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { buildCancel, buildResponse, newBranch, TransactionLayer } from '../../../src/sip/embedded/transaction.ts';
import { FakeTransport, makeRequest, PEER_TCP, PEER_UDP } from './tx-fakes.ts';

function recorder() {
  const responses: SipResponse[] = [];
  const events: string[] = [];
  return {
    responses,
    events,
    handler: {
      onResponse: (r: SipResponse) => {
        responses.push(r);
        events.push(String(r.status));
      },
      onTimeout: () => events.push('timeout'),
      onTransportError: () => events.push('transport-error'),
    },
  };
}

let transport: FakeTransport;
let layer: TransactionLayer;

beforeEach(() => {
  vi.useFakeTimers();
  transport = new FakeTransport();
  layer = new TransactionLayer(transport);
});

afterEach(() => {
  layer.stop();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

describe('INVITE client transaction', () => {
  it('retransmits over UDP with timer A doubling, then times out at timer B', () => {
    const rec = recorder();
    layer.sendRequest(makeRequest({ method: 'INVITE', branch: newBranch() }), PEER_UDP, rec.handler);
    vi.advanceTimersByTime(31_999);
    expect(transport.times('INVITE')).toEqual([0, 500, 1500, 3500, 7500, 15500, 31500]);
    expect(rec.events).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(rec.events).toEqual(['timeout']);
    vi.advanceTimersByTime(60_000);
    expect(transport.times('INVITE')).toHaveLength(7);
    expect(layer.counters.clientTransactions).toBe(0);
  });

  it('does not retransmit over TCP but still times out at 64*T1', () => {
    const rec = recorder();
    layer.sendRequest(makeRequest({ method: 'INVITE', branch: newBranch(), transport: 'TCP' }), PEER_TCP, rec.handler);
    vi.advanceTimersByTime(32_000);
    expect(transport.times('INVITE')).toEqual([0]);
    expect(rec.events).toEqual(['timeout']);
  });

  it('stops retransmitting once a provisional arrives', () => {
    const rec = recorder();
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    layer.sendRequest(invite, PEER_UDP, rec.handler);
    vi.advanceTimersByTime(600);
    transport.receive(buildResponse(invite, 180, undefined, { toTag: 'uas1' }), PEER_UDP);
    vi.advanceTimersByTime(40_000);
    expect(transport.times('INVITE')).toEqual([0, 500]);
    expect(rec.events).toEqual(['180']);
  });

  it('ACKs a 486 itself and absorbs its retransmissions until timer D', () => {
    const rec = recorder();
    const branch = newBranch();
    const invite = makeRequest({
      method: 'INVITE',
      branch,
      cseq: 7,
      routes: ['<sip:p1.example;lr>', '<sip:p2.example;lr>'],
    });
    layer.sendRequest(invite, PEER_UDP, rec.handler);
    const busy = buildResponse(invite, 486, undefined, { toTag: 'uas9' });
    transport.receive(busy, PEER_UDP);
    expect(rec.events).toEqual(['486']);
    const [ack] = transport.matching('ACK');
    const a = ack!.msg as SipRequest;
    expect(ack!.dest).toEqual(PEER_UDP);
    expect(a.uri).toBe(invite.uri);
    expect(a.headers.getAll('Via')).toEqual([invite.headers.getAll('Via')[0]]);
    expect(a.headers.get('Via')).toContain(branch);
    expect(a.headers.get('To')).toBe('<sip:bob@example.net>;tag=uas9');
    expect(a.headers.get('CSeq')).toBe('7 ACK');
    expect(a.headers.getAll('Route')).toEqual(['<sip:p1.example;lr>', '<sip:p2.example;lr>']);
    expect(a.headers.get('Call-ID')).toBe(invite.headers.get('Call-ID'));

    vi.advanceTimersByTime(10_000);
    transport.receive(busy, PEER_UDP);
    expect(rec.events).toEqual(['486']);
    expect(transport.matching('ACK')).toHaveLength(2);
    expect(transport.times('INVITE')).toEqual([0]);
    expect(layer.counters.clientTransactions).toBe(1);
    vi.advanceTimersByTime(22_000); // timer D = 32 s
    expect(layer.counters.clientTransactions).toBe(0);
  });

  it('terminates at once after a non-2xx final over TCP (timer D = 0)', () => {
    const rec = recorder();
    const invite = makeRequest({ method: 'INVITE', branch: newBranch(), transport: 'TCP' });
    layer.sendRequest(invite, PEER_TCP, rec.handler);
    transport.receive(buildResponse(invite, 603, undefined, { toTag: 'x' }), PEER_TCP);
    expect(transport.matching('ACK')).toHaveLength(1);
    expect(layer.counters.clientTransactions).toBe(0);
  });

  it('passes every 2xx up (retransmissions and forks) and sends no ACK itself', () => {
    const rec = recorder();
    const strays: SipResponse[] = [];
    layer.onStrayResponse((r) => strays.push(r));
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    layer.sendRequest(invite, PEER_UDP, rec.handler);
    const ok = buildResponse(invite, 200, undefined, { toTag: 'a' });
    transport.receive(ok, PEER_UDP);
    vi.advanceTimersByTime(500);
    transport.receive(ok, PEER_UDP);
    transport.receive(buildResponse(invite, 200, undefined, { toTag: 'b' }), PEER_UDP);
    transport.receive(buildResponse(invite, 486, undefined, { toTag: 'c' }), PEER_UDP);
    expect(rec.events).toEqual(['200', '200', '200']);
    expect(transport.matching('ACK')).toHaveLength(0);
    expect(transport.times('INVITE')).toEqual([0]);
    vi.advanceTimersByTime(32_000);
    expect(layer.counters.clientTransactions).toBe(0);
    transport.receive(ok, PEER_UDP);
    expect(rec.events).toHaveLength(3);
    expect(strays.map((r) => r.status)).toEqual([200]);
  });

  it('fails with onTransportError when the transport cannot send', () => {
    const rec = recorder();
    const invite = makeRequest({ method: 'INVITE', branch: newBranch(), transport: 'TCP' });
    layer.sendRequest(invite, PEER_TCP, rec.handler);
    transport.failSend(invite, PEER_TCP);
    expect(rec.events).toEqual(['transport-error']);
    expect(layer.counters.clientTransactions).toBe(0);
  });
});

describe('non-INVITE client transaction', () => {
  it('retransmits with timer E capped at T2 and times out at timer F', () => {
    const rec = recorder();
    layer.sendRequest(makeRequest({ method: 'OPTIONS', branch: newBranch() }), PEER_UDP, rec.handler);
    vi.advanceTimersByTime(32_000);
    expect(transport.times('OPTIONS')).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(rec.events).toEqual(['timeout']);
  });

  it('retransmits every T2 once a provisional arrived', () => {
    const rec = recorder();
    const req = makeRequest({ method: 'BYE', branch: newBranch(), toTag: 't' });
    layer.sendRequest(req, PEER_UDP, rec.handler);
    vi.advanceTimersByTime(600);
    transport.receive(buildResponse(req, 100), PEER_UDP);
    vi.advanceTimersByTime(9_400); // up to t = 10 s
    expect(transport.times('BYE')).toEqual([0, 500, 1500, 5500, 9500]);
  });

  it('absorbs final response retransmissions for timer K, then terminates', () => {
    const rec = recorder();
    const strays: number[] = [];
    layer.onStrayResponse((r) => strays.push(r.status));
    const req = makeRequest({ method: 'OPTIONS', branch: newBranch() });
    layer.sendRequest(req, PEER_UDP, rec.handler);
    const ok = buildResponse(req, 200, undefined, { toTag: 'z' });
    transport.receive(ok, PEER_UDP);
    vi.advanceTimersByTime(4_999);
    transport.receive(ok, PEER_UDP);
    expect(rec.events).toEqual(['200']);
    expect(transport.times('OPTIONS')).toEqual([0]);
    vi.advanceTimersByTime(1);
    expect(layer.counters.clientTransactions).toBe(0);
    transport.receive(ok, PEER_UDP);
    expect(strays).toEqual([200]);
  });

  it('matches responses by branch and CSeq method (CANCEL vs INVITE)', () => {
    const inv = recorder();
    const can = recorder();
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    layer.sendRequest(invite, PEER_UDP, inv.handler);
    transport.receive(buildResponse(invite, 180, undefined, { toTag: 'q' }), PEER_UDP);
    const cancel = buildCancel(invite);
    layer.sendRequest(cancel, PEER_UDP, can.handler);
    transport.receive(buildResponse(cancel, 200, undefined, { toTag: 'q' }), PEER_UDP);
    transport.receive(buildResponse(invite, 487, undefined, { toTag: 'q' }), PEER_UDP);
    expect(inv.events).toEqual(['180', '487']);
    expect(can.events).toEqual(['200']);
  });

  it('gives up on a CANCELled INVITE that never gets a final response (64*T1)', () => {
    const inv = recorder();
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    layer.sendRequest(invite, PEER_UDP, inv.handler);
    transport.receive(buildResponse(invite, 180, undefined, { toTag: 'q' }), PEER_UDP);
    vi.advanceTimersByTime(60_000);
    expect(inv.events).toEqual(['180']); // no timer B in Proceeding
    layer.sendRequest(buildCancel(invite), PEER_UDP, recorder().handler);
    vi.advanceTimersByTime(32_000);
    expect(inv.events).toEqual(['180', 'timeout']);
  });
});

describe('request and CANCEL builders', () => {
  it('buildResponse copies Via (all, in order), From, To (+tag), Call-ID, CSeq', () => {
    const req = makeRequest({ method: 'INVITE', branch: 'z9hG4bKabc', cseq: 3 });
    const res = buildResponse(req, 180, undefined, { toTag: 'tt', headers: [['Contact', '<sip:gw@192.0.2.1>']] });
    expect(res.reason).toBe('Ringing');
    expect(res.headers.getAll('Via')).toEqual(req.headers.getAll('Via'));
    expect(res.headers.get('From')).toBe(req.headers.get('From'));
    expect(res.headers.get('To')).toBe('<sip:bob@example.net>;tag=tt');
    expect(res.headers.get('Call-ID')).toBe('call-1@example.com');
    expect(res.headers.get('CSeq')).toBe('3 INVITE');
    expect(res.headers.get('Contact')).toBe('<sip:gw@192.0.2.1>');
    const inDialog = makeRequest({ method: 'BYE', branch: 'z9hG4bKdef', toTag: 'keep' });
    expect(buildResponse(inDialog, 200, 'OK', { toTag: 'other' }).headers.get('To')).toBe(
      '<sip:bob@example.net>;tag=keep',
    );
  });

  it('buildCancel keeps URI, Call-ID, From, To, CSeq number, top Via only and Route', () => {
    const invite = makeRequest({ method: 'INVITE', branch: 'z9hG4bKinv', cseq: 12, routes: ['<sip:p.example;lr>'] });
    const c = buildCancel(invite);
    expect(c.method).toBe('CANCEL');
    expect(c.uri).toBe(invite.uri);
    expect(c.headers.getAll('Via')).toEqual([invite.headers.getAll('Via')[0]]);
    expect(c.headers.get('CSeq')).toBe('12 CANCEL');
    expect(c.headers.getAll('Route')).toEqual(['<sip:p.example;lr>']);
    for (const h of ['From', 'To', 'Call-ID']) expect(c.headers.get(h)).toBe(invite.headers.get(h));
  });

  it('newBranch carries the RFC 3261 magic cookie and is unique', () => {
    const a = newBranch();
    expect(a.startsWith('z9hG4bK')).toBe(true);
    expect(newBranch()).not.toBe(a);
  });
});

describe('after(): the TU bookkeeping on the layer timer wheel', () => {
  it('runs once after its delay, without a Node timer of its own per call', () => {
    const fired: number[] = [];
    for (let i = 0; i < 100; i++) layer.after(32_000, () => fired.push(i));
    expect(vi.getTimerCount()).toBe(1); // the wheel's one timer
    vi.advanceTimersByTime(31_999);
    expect(fired).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(fired).toHaveLength(100);
  });

  it('is dropped by stop(), and a throwing callback does not stop the others', () => {
    const fired: string[] = [];
    layer.after(10, () => {
      throw new Error('boom');
    });
    layer.after(10, () => fired.push('second'));
    vi.advanceTimersByTime(10);
    expect(fired).toEqual(['second']);
    layer.after(1_000, () => fired.push('late'));
    layer.stop();
    vi.advanceTimersByTime(1_000);
    expect(fired).toEqual(['second']);
    layer.after(10, () => fired.push('after stop'));
    expect(vi.getTimerCount()).toBe(0);
  });
});
