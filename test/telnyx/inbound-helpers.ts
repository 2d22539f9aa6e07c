/**
 * Shared set-up of the inbound Call Control tests: the Telnyx harness (real routes, registry, Kallglot sandbox,
 * Ed25519-signed webhooks) with the real `telnyx` SDK pointed at a FakeTelnyx, and the webhooks of an incoming call.
 */
import { expect } from 'vitest';
import { ADMIN_TOKEN, TELNYX_API_KEY, callEvent, startHarness } from './harness.ts';
import type { Harness, HarnessOptions } from './harness.ts';
import { FakeTelnyx } from './fake-telnyx.ts';

export const CC_PATH = '/webhooks/telnyx/call-control';
export const FROM = '+4930111222';
export const TO = '+4940333444';
export const DIRECT = '+4940999000';

export interface InboundTest {
  hh: Harness;
  fk: FakeTelnyx;
  close(): Promise<void>;
}

export async function setupInbound(env: Record<string, string> = {}, opts: HarnessOptions = {}): Promise<InboundTest> {
  const fk = new FakeTelnyx();
  await fk.start();
  const hh = await startHarness({
    ...opts,
    env: { TELNYX_API_KEY, TELNYX_BASE_URL: fk.url, DIRECT_NUMBER: DIRECT, ...env },
  });
  return {
    hh,
    fk,
    async close() {
      await hh.close();
      await fk.stop();
    },
  };
}

/** call.initiated of an incoming call, as Telnyx posts it to the Call Control application's webhook URL. */
export function initiatedEvent(callControlId: string, eventId: string, over: Record<string, unknown> = {}): object {
  return callEvent(
    'call.initiated',
    {
      call_control_id: callControlId,
      call_leg_id: `leg-${callControlId}`,
      call_session_id: `cs-${callControlId}`,
      connection_id: 'cc-app-1',
      direction: 'incoming',
      from: FROM,
      to: TO,
      state: 'parked',
      ...over,
    },
    eventId,
  );
}

/** POST a signed webhook to the Call Control path; it must be acknowledged with 200. */
export async function post(hh: Harness, body: object): Promise<Record<string, unknown>> {
  const res = await hh.webhook(CC_PATH, body);
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

/** Deliver call.initiated and wait for the work it started after the reply. */
export async function initiate(t: InboundTest, callControlId: string, over: Record<string, unknown> = {}) {
  const reply = await post(t.hh, initiatedEvent(callControlId, `ev-init-${callControlId}`, over));
  await t.hh.routes.inbound.idle();
  return reply;
}

export function decodeState(b64: unknown): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(b64), 'base64').toString('utf8')) as Record<string, unknown>;
}

/** The client_state our answer set: Telnyx puts it on every later webhook of the call. */
export function answeredState(t: InboundTest, callControlId: string): string {
  const [answer] = t.fk.actions('answer', callControlId);
  expect(answer).toBeDefined();
  return String(answer!.body.client_state);
}

export async function adminCalls(hh: Harness): Promise<Array<Record<string, unknown>>> {
  const res = await fetch(`${hh.url}/calls?recent=50`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { calls: Array<Record<string, unknown>> }).calls;
}
