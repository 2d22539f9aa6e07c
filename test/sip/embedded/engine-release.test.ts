/**
 * A finished call must not stay in memory while its transactions linger (timers L, M, J, K: up to 32 s): the call
 * logic's handlers (onProvisional, onCancel, onEnd) reach its whole session. Two embedded engines over loopback UDP;
 * reachability is checked with a WeakRef and a forced collection while the transactions are still alive.
 */
import { setImmediate as nextMacrotask } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { afterEach, describe, expect, it } from 'vitest';
import type { EmbeddedEngine } from '../../../src/sip/embedded/engine.ts';
import type { Dialog } from '../../../src/sip/port.ts';
import { TEST_SDP, loopbackEngine } from './loopback-engine.ts';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

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

/** A stand-in for the call logic's session: reachable only through the handlers registered on the engine. */
interface Session {
  events: string[];
}

/**
 * b answers (after a 180) with a session of its own. A separate function from the caller's: a closure that b keeps
 * must not share a scope with the caller's session, or the test itself would keep that session alive.
 */
function answerWithSession(b: EmbeddedEngine, refs: WeakRef<Session>[]): Promise<void> {
  return new Promise<void>((resolve) => {
    b.onInvite((call) => {
      const session: Session = { events: [] };
      refs.push(new WeakRef(session));
      call.onCancel(() => session.events.push('cancel'));
      call.sendProvisional(180);
      void call.answer({ body: SDP, contentType: 'application/sdp' }).then((d) =>
        d.onEnd(() => {
          session.events.push('end');
          resolve();
        }),
      );
    });
  });
}

/** One call a → b, hung up by a; returns WeakRefs to both sides' sessions. */
async function callAndHangUp(a: EmbeddedEngine, b: EmbeddedEngine): Promise<WeakRef<Session>[]> {
  const refs: WeakRef<Session>[] = [];
  const ended = answerWithSession(b, refs);
  const caller: Session = { events: [] };
  refs.push(new WeakRef(caller));
  const out = a.invite({ uri: `sip:b@127.0.0.1:${b.localPort}`, from: { uri: 'sip:a@127.0.0.1' }, body: SDP });
  out.onProvisional((p) => caller.events.push(String(p.status)));
  const dialog: Dialog = await out.result;
  dialog.onEnd(() => caller.events.push('end'));
  await dialog.bye();
  await ended;
  return refs;
}

describe('embedded engine: a finished call is released at once', () => {
  it('keeps neither side of the call while the INVITE and BYE transactions linger', async () => {
    const a = engine();
    const b = engine();
    await a.start();
    await b.start();
    const refs = await callAndHangUp(a, b);
    await new Promise((resolve) => setTimeout(resolve, 50)); // the BYE's 200 and the last ACK land
    expect(a.stats().activeTransactions).toBeGreaterThan(0); // INVITE (Accepted, timer M) and BYE (timer K)
    expect(b.stats().activeTransactions).toBeGreaterThan(0); // INVITE (Accepted, timer L) and BYE (timer J)
    await nextMacrotask();
    gc();
    expect(refs.map((r) => r.deref() === undefined)).toEqual([true, true]);
  });
});
