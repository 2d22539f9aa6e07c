/**
 * Transactions linger after their final response (up to 32 s) to absorb retransmissions; they must not keep the
 * request, the parsed responses or the TU's handlers (which reach the whole call) for that long.
 * Whether something is still reachable is checked with a WeakRef and a forced collection.
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SipMessage, SipRequest, SipResponse } from '../../../src/sip/embedded/message.ts';
import { serializeMessage } from '../../../src/sip/embedded/serialize.ts';
import {
  buildCancel,
  buildResponse,
  type ClientTransactionHandler,
  newBranch,
  type ServerTransaction,
  TransactionLayer,
} from '../../../src/sip/embedded/transaction.ts';
import { FakeTransport, makeRequest, PEER_UDP } from './tx-fakes.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** True when nothing but the WeakRef holds the object any more. */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  await nextMacrotask(); // objects a WeakRef was read in this job are kept until it ends
  gc();
  return ref.deref() === undefined;
}

let transport: FakeTransport;
let layer: TransactionLayer;

beforeEach(() => {
  // setImmediate stays real: collected() needs a macrotask.
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date', 'performance'] });
  transport = new FakeTransport();
  layer = new TransactionLayer(transport);
});

afterEach(() => {
  layer.stop();
  expect(vi.getTimerCount()).toBe(0);
  vi.useRealTimers();
});

function sendWithHandler(method: string): { handler: WeakRef<ClientTransactionHandler>; branch: string } {
  const branch = newBranch();
  const handler: ClientTransactionHandler = {
    onResponse: () => undefined,
    onTimeout: () => undefined,
    onTransportError: () => undefined,
  };
  layer.sendRequest(makeRequest({ method, branch }), PEER_UDP, handler);
  return { handler: new WeakRef(handler), branch };
}

function answer(branch: string, method: string, status: number): SipResponse {
  return buildResponse(makeRequest({ method, branch }), status, undefined, { toTag: 'uas' });
}

describe('client transactions release on completion', () => {
  it('non-INVITE: drops the handler and the request at the final response, still absorbs retransmissions', async () => {
    const { handler, branch } = sendWithHandler('BYE');
    transport.receive(answer(branch, 'BYE', 200), PEER_UDP);
    expect(layer.counters.clientTransactions).toBe(1); // Completed, timer K
    expect(await collected(handler)).toBe(true);
    transport.receive(answer(branch, 'BYE', 200), PEER_UDP);
    expect(layer.counters.absorbed).toBe(1);
  });

  it('INVITE with a non-2xx: drops the handler and the request, and still re-sends its ACK', async () => {
    const { handler, branch } = sendWithHandler('INVITE');
    transport.receive(answer(branch, 'INVITE', 486), PEER_UDP);
    expect(transport.times('ACK')).toHaveLength(1);
    expect(await collected(handler)).toBe(true);
    transport.receive(answer(branch, 'INVITE', 486), PEER_UDP);
    expect(transport.times('ACK')).toHaveLength(2);
  });

  it('INVITE with a 2xx: keeps the handler in Accepted (2xx retransmissions go to the TU), drops the request', () => {
    const seen: number[] = [];
    const branch = newBranch();
    const tx = layer.sendRequest(makeRequest({ method: 'INVITE', branch }), PEER_UDP, {
      onResponse: (res) => seen.push(res.status),
      onTimeout: () => undefined,
      onTransportError: () => undefined,
    });
    transport.receive(answer(branch, 'INVITE', 200), PEER_UDP);
    expect(tx.state).toBe('accepted');
    expect(tx.request).toBeUndefined();
    transport.receive(answer(branch, 'INVITE', 200), PEER_UDP);
    expect(seen).toEqual([200, 200]);
  });

  it('still tells the TU of a timeout, then drops its handler', async () => {
    const events: string[] = [];
    const branch = newBranch();
    const tx = layer.sendRequest(makeRequest({ method: 'OPTIONS', branch }), PEER_UDP, {
      onResponse: () => undefined,
      onTimeout: () => events.push('timeout'),
      onTransportError: () => undefined,
    });
    vi.advanceTimersByTime(32_000);
    expect(events).toEqual(['timeout']);
    expect(tx.request).toBeUndefined();
  });
});

describe('server transactions release on completion', () => {
  let received: Array<{ req: WeakRef<SipRequest>; tx: ServerTransaction | null }>;

  beforeEach(() => {
    received = [];
    layer.onRequest((req, tx) => received.push({ req: new WeakRef(req), tx }));
  });

  function lastTx(): ServerTransaction {
    const tx = received.at(-1)?.tx;
    if (!tx?.request) throw new Error('no live server transaction');
    return tx;
  }

  /** Answer the last request; the test itself keeps no reference to it (only a WeakRef), as a TU would not. */
  function respondLast(status: number, toTag?: string): { tx: ServerTransaction; request: WeakRef<SipRequest> } {
    const tx = lastTx();
    const request = tx.request;
    const ref = received.at(-1)?.req;
    if (!request || !ref) throw new Error('no request to answer');
    tx.respond(buildResponse(request, status, undefined, toTag ? { toTag } : {}));
    return { tx, request: ref };
  }

  it('INVITE answered 2xx: Accepted keeps neither the request nor the response, and a late CANCEL gets the To tag', async () => {
    const branch = newBranch();
    transport.receive(makeRequest({ method: 'INVITE', branch }), PEER_UDP);
    const { tx, request: invite } = respondLast(200, 'dlg');
    expect(tx.state).toBe('accepted');
    expect(tx.request).toBeUndefined();
    expect(tx.lastResponse).toBeUndefined();
    expect(tx.hasFinalResponse).toBe(true);
    expect(await collected(invite)).toBe(true);
    transport.receive(makeRequest({ method: 'INVITE', branch }), PEER_UDP);
    expect(layer.counters.absorbed).toBe(1);
    transport.clear();
    transport.receive(buildCancel(makeRequest({ method: 'INVITE', branch })), PEER_UDP);
    const ok = transport.matching(200)[0]?.msg as SipResponse | undefined;
    expect(ok?.headers.get('To')).toContain('tag=dlg');
  });

  it('non-INVITE: drops the request, keeps the final response to answer retransmissions with it', async () => {
    const branch = newBranch();
    transport.receive(makeRequest({ method: 'BYE', branch, toTag: 'x' }), PEER_UDP);
    const { request: bye } = respondLast(200);
    expect(await collected(bye)).toBe(true);
    transport.clear();
    transport.receive(makeRequest({ method: 'BYE', branch, toTag: 'x' }), PEER_UDP);
    expect(transport.times(200)).toHaveLength(1);
  });

  it('INVITE answered 486: resends it until the ACK, then (Confirmed) drops it', () => {
    const branch = newBranch();
    transport.receive(makeRequest({ method: 'INVITE', branch }), PEER_UDP);
    const { tx } = respondLast(486, 'b');
    expect(tx.lastResponse?.status).toBe(486);
    transport.receive(makeRequest({ method: 'ACK', branch, cseqMethod: 'ACK', toTag: 'b' }), PEER_UDP);
    expect(tx.state).toBe('confirmed');
    expect(tx.lastResponse).toBeUndefined();
    expect(tx.hasFinalResponse).toBe(true);
  });
});

describe('with a transport that hands back the bytes it sent (TransportLayer)', () => {
  beforeEach(() => {
    transport.returnsWire = true;
    layer.onRequest(() => undefined);
  });

  it('a Completed server transaction keeps the encoded final response, not the parsed one, and resends those bytes', async () => {
    const branch = newBranch();
    let bye: SipRequest | undefined = makeRequest({ method: 'BYE', branch, toTag: 'x' });
    layer.onRequest((req, tx) => tx?.respond(buildResponse(req, 200, 'OK')));
    transport.receive(bye, PEER_UDP);
    bye = undefined;
    // In a function of its own: a local the test kept would keep the response alive.
    const { parsed, bytes } = ((): { parsed: WeakRef<SipMessage>; bytes: Buffer } => {
      const sent = transport.matching(200)[0]?.msg;
      if (!sent) throw new Error('no 200 sent');
      return { parsed: new WeakRef(sent), bytes: serializeMessage(sent) };
    })();
    transport.clear();
    expect(await collected(parsed)).toBe(true);
    transport.receive(makeRequest({ method: 'BYE', branch, toTag: 'x' }), PEER_UDP);
    const again = transport.matching(200)[0]?.msg;
    expect(again?.wire?.equals(bytes)).toBe(true);
    expect(again?.headers.lines()).toEqual([]);
  });

  it('a Completed INVITE client transaction re-sends the same ACK bytes for a retransmitted non-2xx', () => {
    const { branch } = sendWithHandler('INVITE');
    transport.receive(answer(branch, 'INVITE', 486), PEER_UDP);
    const first = transport.matching('ACK')[0]?.msg;
    if (!first) throw new Error('no ACK');
    const bytes = serializeMessage(first);
    transport.receive(answer(branch, 'INVITE', 486), PEER_UDP);
    expect(transport.matching('ACK')[1]?.msg.wire?.equals(bytes)).toBe(true);
  });
});
