/**
 * Run one of the project's SIPp scenarios by hand against a running daemon:
 *   npm run sipp -- <scenario> [--target 127.0.0.1:5060] [--dial +4930123456] [--calls 1] [--rate 1]
 *                  [--transport udp|tcp] [--port <local port>] [--hold <ms>]
 * UAC scenarios (uac-*) call --target; UAS scenarios (uas-*) listen on --port (point TELNYX_OUTBOUND_PROXY at it).
 * SIPp's own screen is shown; its exit code is this script's exit code.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    target: { type: 'string', default: '127.0.0.1:5060' },
    dial: { type: 'string', default: '+4930123456' },
    calls: { type: 'string', default: '1' },
    rate: { type: 'string', default: '1' },
    transport: { type: 'string', default: 'udp' },
    port: { type: 'string' },
    hold: { type: 'string', default: '0' },
  },
});
const dir = path.resolve(import.meta.dirname, '../sipp-scenarios');
const name = positionals[0];
if (!name) {
  console.error(
    `usage: npm run sipp -- <scenario> [options]\nscenarios:\n  ${fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.xml'))
      .join('\n  ')}`,
  );
  process.exit(2);
}
const file = path.join(dir, name.endsWith('.xml') ? name : `${name}.xml`);
if (!fs.existsSync(file)) {
  console.error(`no scenario ${file}`);
  process.exit(2);
}
const uac = path.basename(file).startsWith('uac-');
const args = [
  ...(uac ? [values.target!] : []),
  '-sf',
  file,
  '-i',
  '127.0.0.1',
  '-t',
  values.transport === 'tcp' ? 't1' : 'u1',
  '-m',
  values.calls!,
  '-r',
  values.rate!,
  '-d',
  values.hold!,
  '-s',
  values.dial!,
  ...(values.port ? ['-p', values.port] : uac ? [] : ['-p', '5090']),
];
console.log(`sipp ${args.join(' ')}`);
const res = spawnSync('sipp', args, { stdio: 'inherit' });
process.exit(res.status ?? 1);
