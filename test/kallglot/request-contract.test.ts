/**
 * The create-session request, pinned byte for byte for each request style (KALLGLOT_REQUEST_STYLE). The docs disagree
 * on `routing` vs `provider`, so what goes on the wire must change only on purpose: a change to the builder that
 * moves a field, renames it or adds one fails here. Each pinned body is also what the client really sends, and what
 * the sandbox accepts and records.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { KallglotClient } from '../../src/kallglot/client.ts';
import { KallglotSandbox } from '../../src/kallglot/sandbox.ts';
import { buildCreateSessionBody, type RequestStyle } from '../../src/kallglot/types.ts';
import type { TranslatedDecision } from '../../src/routing/types.ts';
import { sessionRequest } from '../../src/sessions/request.ts';

const DECISION: TranslatedDecision = {
  ruleName: 'german-numbers',
  calledNumber: '+4930123456',
  mode: 'bidirectional_translation',
  sourceLanguage: 'de',
  targetLanguage: 'en',
  metadata: { team: 'support' },
  recording: true,
};

/** A translated SIP call from the PBX; its direct route is DIRECT_URI_TEMPLATE's default filled in. */
const SIP_CALL = {
  channel: 'sip',
  callId: 'a84b4c76e66710@pbx.example.com',
  from: '+4989555',
  to: '+4930123456',
  pbxSource: '10.0.0.1',
  otherPartyUri: 'sip:+4930123456@sip.telnyx.com',
} as const;

const METADATA =
  '"metadata":{"team":"support","sip_call_id":"a84b4c76e66710@pbx.example.com","from":"+4989555",' +
  '"to":"+4930123456","pbx_source":"10.0.0.1","rule":"german-numbers"}';

const PINNED: Record<RequestStyle, string> = {
  routing:
    '{"mode":"bidirectional_translation","source_language":"de","target_language":"en",' +
    '"routing":{"type":"sip","sip_uri":"sip:+4930123456@sip.telnyx.com"},' +
    `"recording":{"enabled":true,"channels":"dual"},${METADATA}}`,
  provider:
    '{"mode":"bidirectional_translation","source_language":"de","target_language":"en",' +
    '"provider":{"type":"telnyx","sip_uri":"sip:+4930123456@sip.telnyx.com"},' +
    `"recording":{"enabled":true,"channels":"dual"},${METADATA}}`,
};

const servers: Server[] = [];
const sandboxes: KallglotSandbox[] = [];
const clients: KallglotClient[] = [];
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  await Promise.all(sandboxes.splice(0).map((s) => s.stop()));
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((resolve) => s.close(resolve));
  }
});

/** An HTTP server that keeps each request body as received and answers with a minimal session. */
async function captureServer(): Promise<{ url: string; bodies: string[] }> {
  const bodies: string[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      res.writeHead(201, { 'content-type': 'application/json' }).end('{"id":"sess_1","status":"created"}');
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, bodies };
}

function client(baseUrl: string): KallglotClient {
  const c = new KallglotClient({ baseUrl, apiKey: 'sk_test_x', requestTimeoutMs: 1000, retries: 0 });
  clients.push(c);
  return c;
}

describe.each(['routing', 'provider'] as const)('the %s request style', (style) => {
  it('builds the pinned body, byte for byte', () => {
    expect(JSON.stringify(buildCreateSessionBody(sessionRequest(DECISION, SIP_CALL, style)))).toBe(PINNED[style]);
  });

  it('is what the client puts on the wire', async () => {
    const capture = await captureServer();
    await client(capture.url).createSession(sessionRequest(DECISION, SIP_CALL, style));
    expect(capture.bodies).toEqual([PINNED[style]]);
  });

  it('is accepted by the sandbox, which records the style and the sip_uri', async () => {
    const sandbox = new KallglotSandbox();
    sandboxes.push(sandbox);
    const { url } = await sandbox.start();
    const res = await fetch(`${url}/sessions`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk_test_x', 'content-type': 'application/json' },
      body: PINNED[style],
    });
    expect(res.status).toBe(201);
    expect(sandbox.sessions()).toMatchObject([{ requestStyle: style, sipUri: 'sip:+4930123456@sip.telnyx.com' }]);
  });
});
