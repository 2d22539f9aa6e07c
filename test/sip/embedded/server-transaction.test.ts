import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SipEndpoint, SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import {
  buildCancel,
  buildResponse,
  newBranch,
  type ServerTransaction,
  TransactionLayer,
} from '../../../src/sip/embedded/transaction.ts';
import { FakeTransport, isResponse, makeRequest, PEER_TCP, PEER_UDP } from './tx-fakes.ts';

let transport: FakeTransport;
let layer: TransactionLayer;
let requests: Array<{ req: SipRequest; tx: ServerTransaction | null }>;

beforeEach(() => {
  vi.useFakeTimers();
  transport = new FakeTransport();
  layer = new TransactionLayer(transport);
  requests = [];
  layer.onRequest((req, tx) => requests.push({ req, tx }));
});

afterEach(() => {
  layer.stop();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

function lastTx(): ServerTransaction {
  const tx = requests.at(-1)?.tx;
  if (!tx) throw new Error('no server transaction');
  return tx;
}

/** The request of a transaction that has not sent its final response yet (it is released then). */
function requestOf(tx: ServerTransaction): SipRequest {
  const req = tx.request;
  if (!req) throw new Error('request already released');
  return req;
}

function statuses(): number[] {
  return transport.sent.filter((s) => isResponse(s.msg)).map((s) => (s.msg as SipResponse).status);
}

function ackFor(invite: SipRequest, branch: string, toTag: string): SipRequest {
  const ack = makeRequest({ method: 'ACK', branch, cseq: 1, toTag });
  ack.uri = invite.uri;
  return ack;
}

describe('INVITE server transaction', () => {
  it('sends 100 Trying after 200 ms and resends the last response to retransmitted INVITEs', () => {
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    transport.receive(invite, PEER_UDP);
    expect(requests).toHaveLength(1);
    vi.advanceTimersByTime(199);
    expect(statuses()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(statuses()).toEqual([100]);
    transport.receive(invite, PEER_UDP);
    expect(statuses()).toEqual([100, 100]);
    lastTx().respond(buildResponse(requestOf(lastTx()), 180, undefined, { toTag: 'u' }));
    transport.receive(invite, PEER_UDP);
    expect(statuses()).toEqual([100, 100, 180, 180]);
    expect(requests).toHaveLength(1);
  });

  it('sends no 100 when the TU answers within 200 ms', () => {
    transport.receive(makeRequest({ method: 'INVITE', branch: newBranch() }), PEER_UDP);
    lastTx().respond(buildResponse(requestOf(lastTx()), 180, undefined, { toTag: 'u' }));
    vi.advanceTimersByTime(1000);
    expect(statuses()).toEqual([180]);
  });

  it('routes responses per Via received/rport (UDP) and back on the connection (TCP)', () => {
    transport.receive(
      makeRequest({ method: 'INVITE', branch: newBranch(), viaExtra: ';rport=40000;received=203.0.113.5' }),
      PEER_UDP,
    );
    transport.receive(makeRequest({ method: 'OPTIONS', branch: newBranch(), transport: 'TCP' }), PEER_TCP);
    lastTx().respond(buildResponse(requestOf(lastTx()), 200));
    vi.advanceTimersByTime(200);
    const dests = new Map<number, SipEndpoint>(transport.sent.map((s) => [(s.msg as SipResponse).status, s.dest]));
    expect(dests.get(100)).toEqual({ transport: 'udp', address: '203.0.113.5', port: 40000 });
    expect(dests.get(200)).toEqual(PEER_TCP);
  });

  it('retransmits a 486 with timer G (capped at T2) until timer H, then reports the missing ACK', () => {
    const timeouts: ServerTransaction[] = [];
    layer.onAckTimeout((tx) => timeouts.push(tx));
    transport.receive(makeRequest({ method: 'INVITE', branch: newBranch() }), PEER_UDP);
    const tx = lastTx();
    tx.respond(buildResponse(requestOf(tx), 486, undefined, { toTag: 'b' }));
    vi.advanceTimersByTime(31_999);
    expect(transport.times(486)).toEqual([0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500]);
    expect(timeouts).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(timeouts).toEqual([tx]);
    expect(tx.state).toBe('terminated');
    expect(layer.counters.serverTransactions).toBe(0);
  });

  it('stops timer G on ACK, absorbs ACK and INVITE retransmissions, and ends after timer I', () => {
    const branch = newBranch();
    const invite = makeRequest({ method: 'INVITE', branch });
    transport.receive(invite, PEER_UDP);
    lastTx().respond(buildResponse(invite, 486, undefined, { toTag: 'b' }));
    vi.advanceTimersByTime(1000);
    transport.receive(ackFor(invite, branch, 'b'), PEER_UDP);
    expect(lastTx().state).toBe('confirmed');
    transport.receive(ackFor(invite, branch, 'b'), PEER_UDP);
    transport.receive(invite, PEER_UDP);
    vi.advanceTimersByTime(30_000);
    expect(transport.times(486)).toEqual([0, 500]);
    expect(requests.map((r) => r.req.method)).toEqual(['INVITE']);
    expect(layer.counters.serverTransactions).toBe(0);
  });

  it('after a 2xx absorbs INVITE retransmissions and hands the 2xx ACK to the TU with no transaction', () => {
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    transport.receive(invite, PEER_UDP);
    lastTx().respond(buildResponse(invite, 200, undefined, { toTag: 'ok' }));
    transport.receive(invite, PEER_UDP);
    expect(requests).toHaveLength(1);
    expect(statuses()).toEqual([200]);
    transport.receive(ackFor(invite, newBranch(), 'ok'), PEER_UDP);
    expect(requests.map((r) => [r.req.method, r.tx === null])).toEqual([
      ['INVITE', false],
      ['ACK', true],
    ]);
    vi.advanceTimersByTime(32_000);
    expect(layer.counters.serverTransactions).toBe(0);
  });

  it('retransmit2xxUntilAck doubles from T1 to T2 and stops when acked', () => {
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    const ok = buildResponse(invite, 200, undefined, { toTag: 'ok' });
    let acked = false;
    const gaveUp = vi.fn();
    layer.retransmit2xxUntilAck(ok, PEER_UDP, () => acked, gaveUp);
    vi.advanceTimersByTime(8_000);
    expect(transport.times(200)).toEqual([500, 1500, 3500, 7500]);
    acked = true;
    vi.advanceTimersByTime(40_000);
    expect(transport.times(200)).toHaveLength(4);
    expect(gaveUp).not.toHaveBeenCalled();
  });

  it('retransmit2xxUntilAck gives up after 64*T1', () => {
    const ok = buildResponse(makeRequest({ method: 'INVITE', branch: newBranch() }), 200, undefined, { toTag: 'ok' });
    const gaveUp = vi.fn();
    layer.retransmit2xxUntilAck(ok, PEER_UDP, () => false, gaveUp);
    vi.advanceTimersByTime(31_999);
    expect(gaveUp).not.toHaveBeenCalled();
    expect(transport.times(200).at(-1)).toBe(31_500);
    vi.advanceTimersByTime(1);
    expect(gaveUp).toHaveBeenCalledOnce();
  });
});

describe('non-INVITE server transaction', () => {
  it('absorbs retransmissions while Trying, resends the final while Completed, and ends after timer J', () => {
    const req = makeRequest({ method: 'OPTIONS', branch: newBranch() });
    transport.receive(req, PEER_UDP);
    transport.receive(req, PEER_UDP);
    expect(statuses()).toEqual([]);
    lastTx().respond(buildResponse(req, 200));
    vi.advanceTimersByTime(31_000);
    transport.receive(req, PEER_UDP);
    expect(statuses()).toEqual([200, 200]);
    expect(requests).toHaveLength(1);
    vi.advanceTimersByTime(1_000);
    expect(layer.counters.serverTransactions).toBe(0);
    transport.receive(req, PEER_UDP);
    expect(requests).toHaveLength(2);
  });

  it('terminates right after the final response over TCP', () => {
    transport.receive(makeRequest({ method: 'OPTIONS', branch: newBranch(), transport: 'TCP' }), PEER_TCP);
    lastTx().respond(buildResponse(requestOf(lastTx()), 200));
    expect(layer.counters.serverTransactions).toBe(0);
  });

  it('answers 500 when the TU handler throws', () => {
    layer.onRequest(() => {
      throw new Error('boom');
    });
    transport.receive(makeRequest({ method: 'MESSAGE', branch: newBranch() }), PEER_UDP);
    expect(statuses()).toEqual([500]);
  });
});

describe('CANCEL (RFC 3261 §9.2)', () => {
  it('answers 200 and notifies the TU when the INVITE is pending', () => {
    const cancels: Array<[ServerTransaction, SipRequest]> = [];
    layer.onCancel((tx, c) => cancels.push([tx, c]));
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    transport.receive(invite, PEER_UDP);
    const inviteTx = lastTx();
    inviteTx.respond(buildResponse(invite, 180, undefined, { toTag: 'r' }));
    transport.receive(buildCancel(invite), PEER_UDP);
    const ok = transport.matching(200)[0]!.msg as SipResponse;
    expect(ok.headers.get('CSeq')).toBe('1 CANCEL');
    expect(ok.headers.get('To')).toContain('tag=r');
    expect(cancels).toHaveLength(1);
    expect(cancels[0]![0]).toBe(inviteTx);
    expect(requests).toHaveLength(1); // the CANCEL itself is not a new request for the TU
    inviteTx.respond(buildResponse(invite, 487, undefined, { toTag: 'r' }));
    expect(statuses()).toEqual([180, 200, 487]);
  });

  it('only answers 200 when the INVITE already has a final response', () => {
    const onCancel = vi.fn();
    layer.onCancel(onCancel);
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    transport.receive(invite, PEER_UDP);
    lastTx().respond(buildResponse(invite, 486, undefined, { toTag: 'r' }));
    transport.receive(buildCancel(invite), PEER_UDP);
    expect(statuses()).toEqual([486, 200]);
    expect(onCancel).not.toHaveBeenCalled();
  });

  it('answers 481 to a CANCEL that matches nothing', () => {
    const onCancel = vi.fn();
    layer.onCancel(onCancel);
    transport.receive(buildCancel(makeRequest({ method: 'INVITE', branch: newBranch() })), PEER_UDP);
    expect(statuses()).toEqual([481]);
    expect(onCancel).not.toHaveBeenCalled();
  });

  it('sends the 487 itself when no onCancel handler is registered', () => {
    const invite = makeRequest({ method: 'INVITE', branch: newBranch() });
    transport.receive(invite, PEER_UDP);
    transport.receive(buildCancel(invite), PEER_UDP);
    expect(statuses()).toEqual([200, 487]);
  });
});
