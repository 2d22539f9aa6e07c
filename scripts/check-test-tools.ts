/**
 * Runs before `npm test`: the end-to-end tests drive real SIPp and a real Kamailio (the record-routing proxy tests).
 * Without them they would fail one by one with spawn errors; say once, clearly, what to install instead.
 */
import { spawnSync } from 'node:child_process';

const missing: string[] = [];
const sipp = process.env.SIPP_BIN ?? 'sipp';
const sippRun = spawnSync(sipp, ['-v'], { encoding: 'utf8' });
const sippVersion = /SIPp v[\d.]+/.exec(`${sippRun.stdout ?? ''}${sippRun.stderr ?? ''}`)?.[0];
if (sippRun.error || !sippVersion) missing.push('sip-tester');
const kamailio = spawnSync('kamailio', ['-v'], { encoding: 'utf8' });
const kamailioVersion = /kamailio [\d.]+/.exec(kamailio.stdout ?? '')?.[0];
if (kamailio.error || !kamailioVersion) missing.push('kamailio');
if (missing.length) {
  console.error(`The end-to-end tests need SIPp and Kamailio: apt-get install -y ${missing.join(' ')}`);
  process.exit(1);
}
console.log(`using ${sippVersion}, ${kamailioVersion}`);
