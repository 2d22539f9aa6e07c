/**
 * The operator API on an in-process Gateway: GET /routing, POST /admin/reload, POST /admin/drain behind ADMIN_TOKEN,
 * and /readyz's Kallglot field.
 */
import fs from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/ports.ts';
import { ADMIN_TOKEN, type InProcessGateway, type JsonBody, sample, startInProcess } from './in-process.ts';

const RULES = `rules:
  - name: emergency
    match:
      called: { regex: "^(112|911)$" }
    mode: bypass
  - name: branch
    match:
      called: "+49"
      source: ["10.0.0.0/8", "192.0.2.7"]
      header: { name: X-Branch, value: lyon }
    mode: assistive_translation
    source_language: fr
    target_language: en
    recording: true
default:
  mode: bidirectional_translation
  source_language: de
  target_language: en
`;

// Line 5 below: an invalid language code in rule "second".
const BAD_RULES = `rules:
  - name: second
    match: {}
    mode: bidirectional_translation
    source_language: klingon-xx-yy
    target_language: en
default:
  mode: bypass
`;

let running: InProcessGateway | undefined;
afterEach(async () => {
  await running?.stop();
  running = undefined;
});

async function start(env: Record<string, string> = {}): Promise<InProcessGateway> {
  running = await startInProcess(RULES, env);
  return running;
}

const ROUTES: Array<[string, string]> = [
  ['GET', '/routing'],
  ['POST', '/admin/reload'],
  ['POST', '/admin/drain'],
];

describe('admin API: authentication', () => {
  it('answers 401 without the bearer token or with a wrong one', async () => {
    const g = await start();
    for (const [method, path] of ROUTES) {
      expect((await g.request(method, path, null)).status, `${method} ${path}`).toBe(401);
      const wrong = await g.request(method, path, `${ADMIN_TOKEN}x`);
      expect(wrong.status, `${method} ${path}`).toBe(401);
      expect(wrong.body).toEqual({ error: 'unauthorized' });
    }
    // Nothing happened behind the refusals.
    expect((await g.request('GET', '/readyz', null)).status).toBe(200);
  });

  it('answers 404 admin_api_disabled when ADMIN_TOKEN is not set', async () => {
    const g = await start({ ADMIN_TOKEN: '' });
    for (const [method, path] of ROUTES) {
      const res = await g.request(method, path, 'anything');
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error).toBe('admin_api_disabled');
    }
    expect((await g.request('GET', '/readyz', null)).status).toBe(200);
  });
});

describe('GET /routing', () => {
  it('lists the rules in force with their source file, load time, modes, match summaries and the default', async () => {
    const before = Date.now();
    const g = await start();
    const { status, body } = await g.request('GET', '/routing');
    expect(status).toBe(200);
    expect(body.file).toBe(g.rulesFile);
    expect(Date.parse(body.loadedAt)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(body.loadedAt)).toBeLessThanOrEqual(Date.now());
    expect(body.rules).toEqual([
      {
        name: 'emergency',
        index: 0,
        line: 2,
        mode: 'bypass',
        match: { called: '/^(112|911)$/' },
        recording: false,
        greeting: false,
      },
      {
        name: 'branch',
        index: 1,
        line: 6,
        mode: 'assistive_translation',
        sourceLanguage: 'fr',
        targetLanguage: 'en',
        match: { called: '+49', source: ['10.0.0.0/8', '192.0.2.7/32'], header: { name: 'x-branch', value: 'lyon' } },
        recording: true,
        greeting: false,
      },
    ]);
    expect(body.default).toEqual({
      mode: 'bidirectional_translation',
      sourceLanguage: 'de',
      targetLanguage: 'en',
      recording: false,
      greeting: false,
    });
    expect(body.lastRefused).toBeUndefined();
  });
});

describe('POST /admin/reload', () => {
  it('reloads the file now and answers with the new rule count', async () => {
    const g = await start();
    const loadedBefore = (await g.request('GET', '/routing')).body.loadedAt;
    fs.writeFileSync(
      g.rulesFile,
      'rules:\n  - name: only\n    match: {}\n    mode: bypass\ndefault:\n  mode: bypass\n',
    );
    const res = await g.request('POST', '/admin/reload');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ reloaded: true, file: g.rulesFile, rules: 1, defaultMode: 'bypass' });
    const now = (await g.request('GET', '/routing')).body;
    expect(now.rules.map((r: { name: string }) => r.name)).toEqual(['only']);
    expect(Date.parse(now.loadedAt)).toBeGreaterThanOrEqual(Date.parse(loadedBefore));
    expect(sample(await g.metrics(), 'kallglot_gateway_routing_reloads_total{result="ok"}')).toBeGreaterThanOrEqual(1);
  });

  it('refuses a bad file with 422 naming file, rule, key and line; the previous rules stay in force', async () => {
    const g = await start();
    fs.writeFileSync(g.rulesFile, BAD_RULES);
    const res = await g.request('POST', '/admin/reload');
    expect(res.status).toBe(422);
    expect(res.body).toMatchObject({ reloaded: false, error: 'rules_refused', keptRules: 2 });
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.errors[0]).toMatchObject({
      file: g.rulesFile,
      line: 5,
      ruleIndex: 0,
      ruleName: 'second',
      key: 'source_language',
    });
    expect(res.body.errors[0].message).toContain(`routing rules ${g.rulesFile}, line 5`);
    expect(res.body.errors[0].message).toContain('source_language');

    const routing = (await g.request('GET', '/routing')).body;
    expect(routing.rules.map((r: { name: string }) => r.name)).toEqual(['emergency', 'branch']);
    expect(routing.lastRefused).toMatchObject({ line: 5, key: 'source_language' });
    const metrics = await g.metrics();
    expect(sample(metrics, 'kallglot_gateway_routing_reloads_total{result="refused"}')).toBeGreaterThanOrEqual(1);

    // Fixed: accepted again, and the refusal is no longer reported.
    fs.writeFileSync(g.rulesFile, BAD_RULES.replace('klingon-xx-yy', 'fr'));
    expect((await g.request('POST', '/admin/reload')).status).toBe(200);
    expect((await g.request('GET', '/routing')).body.lastRefused).toBeUndefined();
  });
});

describe('POST /admin/drain', () => {
  it('stops admitting at once (/readyz 503), asks the process to stop once, and answers 202 with the active calls', async () => {
    const g = await start({ DRAIN_TIMEOUT_SEC: '7' });
    const requested: string[] = [];
    g.gw.onDrainRequested = (trigger) => requested.push(trigger);
    expect((await g.request('GET', '/readyz', null)).status).toBe(200);

    const res = await g.request('POST', '/admin/drain');
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ draining: true, activeCalls: 0, alreadyDraining: false, drainTimeoutSec: 7 });
    const ready = await g.request('GET', '/readyz', null);
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ ready: false, draining: true });

    const again = await g.request('POST', '/admin/drain');
    expect(again.status).toBe(202);
    expect(again.body.alreadyDraining).toBe(true);
    await new Promise((r) => setImmediate(r));
    expect(requested).toEqual(['POST /admin/drain']);
  });
});

describe('/readyz', () => {
  it('reports whether Kallglot answers, from the cached probe, without making readiness depend on it', async () => {
    const g = await start();
    let body: JsonBody;
    for (let i = 0; i < 50; i++) {
      body = (await g.request('GET', '/readyz', null)).body;
      if (body.kallglot.reachable !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    // The in-process sandbox answers its API base with 404: reachable.
    expect(body).toMatchObject({ ready: true, kallglot: { reachable: true, status: 404 } });
    expect(Date.parse(body.kallglot.checkedAt)).toBeGreaterThan(0);
    expect(sample(await g.metrics(), 'kallglot_gateway_kallglot_up')).toBe(1);
  });

  it('stays 200 when Kallglot is unreachable: calls still go through untranslated', async () => {
    const closed = await freePort('tcp'); // nothing listens there
    const g = await start({ KALLGLOT_API_URL: `http://127.0.0.1:${closed}/v1`, KALLGLOT_API_KEY: 'sk_test_x' });
    let res = await g.request('GET', '/readyz', null);
    for (let i = 0; i < 100 && res.body.kallglot.reachable === null; i++) {
      await new Promise((r) => setTimeout(r, 50));
      res = await g.request('GET', '/readyz', null);
    }
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ ready: true, kallglot: { reachable: false, error: 'ECONNREFUSED' } });
    expect(sample(await g.metrics(), 'kallglot_gateway_kallglot_up')).toBe(0);
  });
});
