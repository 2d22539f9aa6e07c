/**
 * What the embedded engine is told to probe: every trunk's domain with its own transport, once per domain and
 * transport, and no trunk that sends through an outbound proxy.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/load.ts';
import { engineTargetOptions } from '../../src/sip/create-engine.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function configWith(trunksYaml: string, env: Record<string, string> = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-probe-'));
  dirs.push(dir);
  const file = path.join(dir, 'gateway.yaml');
  fs.writeFileSync(file, trunksYaml);
  return loadConfig({ env: { GATEWAY_CONFIG: file, ...env } });
}

const TRUNKS = `telnyx:
  trunks:
    - name: eu-tls
      sipDomain: sip-eu.telnyx.com
      sipTransport: tls
    - name: eu-proxied
      sipDomain: sip-proxied.telnyx.com
      outboundProxy: 127.0.0.1:5091
    - name: same-as-default
      sipDomain: sip.telnyx.com
`;

describe('engineTargetOptions: OPTIONS probing of the trunks', () => {
  it('probes the default trunk and every named trunk on its transport, each domain once, none behind a proxy', () => {
    const probe = engineTargetOptions(configWith(TRUNKS)).probe;
    expect(probe?.uris).toEqual([
      { uri: 'sip:sip.telnyx.com', transport: 'udp' },
      { uri: 'sip:sip-eu.telnyx.com', transport: 'tls' },
    ]);
  });

  it('probes nothing when every trunk goes through an outbound proxy', () => {
    const options = engineTargetOptions(configWith('telnyx: {}\n', { TELNYX_OUTBOUND_PROXY: '127.0.0.1:5092' }));
    expect(options.probe).toBeUndefined();
  });

  it('probes nothing when probing is off (TELNYX_PROBE_INTERVAL_SEC=0)', () => {
    const options = engineTargetOptions(configWith(TRUNKS, { TELNYX_PROBE_INTERVAL_SEC: '0' }));
    expect(options.probe).toBeUndefined();
  });
});
