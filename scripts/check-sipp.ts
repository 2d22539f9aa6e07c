/**
 * Runs before `npm test`: the end-to-end tests drive real SIPp. Without it they would fail one by one with spawn
 * errors; say once, clearly, what to install instead.
 */
import { spawnSync } from 'node:child_process';

const bin = process.env.SIPP_BIN ?? 'sipp';
const res = spawnSync(bin, ['-v'], { encoding: 'utf8' });
const version = /SIPp v[\d.]+/.exec(`${res.stdout ?? ''}${res.stderr ?? ''}`)?.[0];
if (res.error || !version) {
  console.error(`SIPp not found (${bin}). The end-to-end tests need it: apt-get install -y sip-tester`);
  process.exit(1);
}
console.log(`using ${version}`);
