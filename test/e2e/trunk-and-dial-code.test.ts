/**
 * End to end with real SIPp and the real daemon: the routing file's `trunks` name the PBX's trunk (by source CIDR,
 * or by an RFC 4904 tgrp on the Request-URI) so that `match: { trunk }` rules apply, and a dial code picks the
 * languages and is stripped from the number everything after routing uses (the Telnyx INVITEs, the Kallglot
 * session, the registry). The routing file is written by the test (ROUTING_FILE).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { SippResult } from '../helpers/sipp.ts';
import { findMessages, startE2e, waitFor, type E2eEnv } from './harness.ts';

const NUMBER = '+4930123456';
const ADMIN_TOKEN = 'admin-e2e-trunks';

const ROUTING = `trunks:
  - name: branch-a
    tgrp: TG-A
  - name: branch-b
    source: 127.0.0.0/8
rules:
  - name: emergency
    match: { called: { regex: "^112$" } }
    mode: bypass
  - name: dial-german
    dial_code: "*49*"
    match: { direction: outbound }
    mode: bidirectional_translation
    source_language: en
    target_language: de
  - name: branch-a-italian
    match: { trunk: branch-a }
    mode: assistive_translation
    source_language: it
    target_language: de
  - name: branch-b-spanish
    match: { trunk: branch-b }
    mode: assistive_translation
    source_language: es
    target_language: de
    metadata: { site: branch-b }
default:
  mode: bidirectional_translation
  source_language: fr
  target_language: de
`;

let env: E2eEnv | undefined;
const dirs: string[] = [];
afterEach(async () => {
  await env?.teardown();
  env = undefined;
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

async function start(extra: Record<string, string> = {}): Promise<E2eEnv> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-e2e-trunks-'));
  dirs.push(dir);
  const file = path.join(dir, 'routing.yaml');
  fs.writeFileSync(file, ROUTING);
  env = await startE2e({ ROUTING_FILE: file, ADMIN_TOKEN, ...extra });
  return env;
}

/** One call: SIPp UAC (the PBX) dials `service`; SIPp UAS (Telnyx) runs `uas` for `uasCalls` INVITEs. */
async function placeCall(
  e: E2eEnv,
  service: string,
  uas = 'uas-answer-200-expect-bye.xml',
  uasCalls = 1,
): Promise<{ uac: SippResult; uas: SippResult }> {
  const telnyx = e.sipp({ scenario: uas, localPort: e.uasPort, calls: uasCalls, timeoutSec: 15 });
  await telnyx.ready;
  const pbx = e.sipp({
    scenario: 'uac-invite-200-then-bye.xml',
    remote: `127.0.0.1:${e.gw.sipPort}`,
    localPort: e.uacPort,
    service,
    calls: 1,
    durationMs: 200,
    timeoutSec: 15,
  });
  const uac = await pbx.done;
  if (uac.exitCode !== 0) setTimeout(() => void telnyx.stop(), 1000);
  return { uac, uas: await telnyx.done };
}

/** The registry's row of the one call, through the admin API. */
async function registryRow(e: E2eEnv): Promise<Record<string, unknown>> {
  const res = await fetch(`http://127.0.0.1:${e.gw.httpPort}/calls?recent=10`, {
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  const body = (await res.json()) as { calls: Array<Record<string, unknown>> };
  expect(body.calls).toHaveLength(1);
  return body.calls[0]!;
}

describe('trunks and dial codes through the daemon', () => {
  it('names the trunk by the PBX source CIDR: the trunk rule languages and trunk metadata reach Kallglot', async () => {
    const e = await start();
    const r = await placeCall(e, NUMBER);
    const d = () => e.diag(r.uac, r.uas);
    expect(r.uac.exitCode, d()).toBe(0);
    expect(r.uas.exitCode, d()).toBe(0);
    const [session] = await waitFor(() => e.sandbox.stats().ended === 1 && e.sandbox.sessions(), 10_000, d);
    expect(session, d()).toMatchObject({ mode: 'assistive_translation', sourceLanguage: 'es', targetLanguage: 'de' });
    expect(session!.metadata, d()).toMatchObject({
      rule: 'branch-b-spanish',
      trunk: 'branch-b',
      site: 'branch-b',
      to: NUMBER,
      pbx_source: '127.0.0.1',
    });
    const newCall = await e.gw.waitForLog((l) => l.msg === 'new call');
    expect(newCall, d()).toMatchObject({ trunk: 'branch-b', rule: 'branch-b-spanish', to: NUMBER });
    expect(await registryRow(e), d()).toMatchObject({ rule: 'branch-b-spanish', to_user: NUMBER });
  }, 60_000);

  it('names the trunk by an RFC 4904 tgrp on the Request-URI, and drops the tel parameters from the number', async () => {
    const e = await start();
    const r = await placeCall(
      e,
      `${NUMBER};tgrp=TG-A;trunk-context=pbx.example`,
      'uas-translated-503-direct-200.xml',
      2,
    );
    const d = () => e.diag(r.uac, r.uas);
    expect(r.uac.exitCode, d()).toBe(0);
    expect(r.uas.exitCode, d()).toBe(0);
    const [session] = e.sandbox.sessions();
    expect(session, d()).toMatchObject({ sourceLanguage: 'it', targetLanguage: 'de' });
    expect(session!.metadata, d()).toMatchObject({ rule: 'branch-a-italian', trunk: 'branch-a', to: NUMBER });
    // The translated leg failed (503): the direct route dials the number without the PBX's trunk group.
    const invites = findMessages(r.uas.messages, 'received', 'INVITE ');
    expect(
      invites.map((m) => m.startLine),
      d(),
    ).toEqual([`INVITE sip:${session!.id}@sip.telnyx.com SIP/2.0`, `INVITE sip:${NUMBER}@sip.telnyx.com SIP/2.0`]);
    expect(await e.gw.waitForLog((l) => l.msg === 'new call'), d()).toMatchObject({ trunk: 'branch-a' });
  }, 60_000);

  it('dialled *49*+4930123456: the dial-code rule languages, and the stripped number everywhere after routing', async () => {
    // {called} in the translated URI too, so both Telnyx INVITEs show the number they were given.
    const e = await start({ TRANSLATED_URI_TEMPLATE: 'sip:{session_id}@{domain};called={called}' });
    const r = await placeCall(e, `*49*${NUMBER}`, 'uas-translated-503-direct-200.xml', 2);
    const d = () => e.diag(r.uac, r.uas);
    expect(r.uac.exitCode, d()).toBe(0);
    expect(r.uas.exitCode, d()).toBe(0);
    const [session] = e.sandbox.sessions();
    expect(session, d()).toMatchObject({
      mode: 'bidirectional_translation',
      sourceLanguage: 'en',
      targetLanguage: 'de',
    });
    expect(session!.metadata, d()).toMatchObject({ rule: 'dial-german', to: NUMBER, trunk: 'branch-b' });
    // The other party Kallglot is told of is the direct route, filled with the stripped number too.
    expect(session!.sipUri, d()).toBe(`sip:${NUMBER}@sip.telnyx.com`);
    const invites = findMessages(r.uas.messages, 'received', 'INVITE ');
    expect(
      invites.map((m) => m.startLine),
      d(),
    ).toEqual([
      `INVITE sip:${session!.id}@sip.telnyx.com;called=${NUMBER} SIP/2.0`,
      `INVITE sip:${NUMBER}@sip.telnyx.com SIP/2.0`,
    ]);
    expect(await e.gw.waitForLog((l) => l.msg === 'new call'), d()).toMatchObject({
      to: NUMBER,
      dialled: `*49*${NUMBER}`,
      dialCode: '*49*',
      rule: 'dial-german',
    });
    const summary = await e.gw.waitForLog((l) => l.msg === 'call summary', 5000);
    expect(summary, d()).toMatchObject({ route: 'fallback', telnyxUri: `sip:${NUMBER}@sip.telnyx.com` });
    expect(await registryRow(e), d()).toMatchObject({ rule: 'dial-german', to_user: NUMBER });
  }, 60_000);
});
