/** `kallglot-gw targets`: the table of Telnyx SBCs, and its failures (the e2e probing test runs it against a daemon). */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { formatTargetsTable, runTargetsCommand } from '../../src/cli/targets.ts';

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function run(argv: string[], env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  const code = await runTargetsCommand({
    argv,
    env,
    stdout: (t) => {
      out += t;
    },
    stderr: (t) => {
      err += t;
    },
  });
  return { code, out, err };
}

/** A stand-in daemon answering GET /healthz with `body`. */
async function healthz(body: unknown): Promise<string> {
  const server = http.createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`;
}

describe('formatTargetsTable', () => {
  it('shows each SBC, whether it is up, why it is down, and its last probe', () => {
    const text = formatTargetsTable([
      {
        target: 'udp:192.0.2.1:5060',
        name: 'sbc1.example.test',
        up: true,
        probeFailures: 0,
        lastProbe: { at: 'x', result: '200' },
      },
      {
        target: 'udp:192.0.2.2:5060',
        name: 'sbc2.example.test',
        up: false,
        down: 'invite',
        downUntil: '2030-01-01T00:00:30.000Z',
        probeFailures: 0,
      },
      {
        target: 'udp:192.0.2.3:5060',
        name: 'sbc3.example.test',
        up: false,
        down: 'probe',
        probeFailures: 3,
        lastProbe: { at: 'x', result: 'timeout' },
      },
    ]);
    expect(text.split('\n')).toEqual([
      'TARGET              NAME               STATE                                         LAST PROBE',
      'udp:192.0.2.1:5060  sbc1.example.test  up                                            200',
      'udp:192.0.2.2:5060  sbc2.example.test  down (invite until 2030-01-01T00:00:30.000Z)  -',
      'udp:192.0.2.3:5060  sbc3.example.test  down (probe)                                  timeout, 3 failed in a row',
      '3 target(s), 2 down',
      '',
    ]);
  });

  it('says why there may be none', () => {
    expect(formatTargetsTable([])).toMatch(/no Telnyx targets resolved yet/);
  });
});

describe('kallglot-gw targets', () => {
  it('reads /healthz at --url and prints the table or the raw list', async () => {
    const list = [{ target: 'udp:192.0.2.1:5060', name: 'sbc1.example.test', up: true, probeFailures: 0 }];
    const url = await healthz({ status: 'ok', telnyxTargets: list });
    expect((await run(['--url', url])).out).toMatch(/^udp:192\.0\.2\.1:5060\s+sbc1\.example\.test\s+up\s+-$/m);
    const json = await run(['--url', `${url}/`, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toEqual(list);
  });

  it('exit 1 when the address is no gateway or nobody listens there; 2 on a bad option', async () => {
    const other = await run(['--url', await healthz({ hello: 'world' })]);
    expect(other).toMatchObject({ code: 1, err: expect.stringMatching(/lists no telnyxTargets/) });
    const none = await run(['--url', 'http://127.0.0.1:9']);
    expect(none).toMatchObject({ code: 1, err: expect.stringMatching(/cannot read http:\/\/127\.0\.0\.1:9\/healthz/) });
    expect((await run(['--nope'])).code).toBe(2);
    expect((await run(['--help'])).out).toMatch(/^usage: kallglot-gw targets/);
  });
});
