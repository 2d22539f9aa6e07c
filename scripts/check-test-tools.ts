/**
 * Runs before `npm test`: the end-to-end tests drive real SIPp, a real Kamailio (the record-routing proxy tests) and
 * a real dnsmasq (the DNS server of the RFC 3263 tests, package dnsmasq-base), and the registry tests a real
 * PostgreSQL (package postgresql). Without them they would fail one by
 * one with spawn errors; say once, clearly, what to install instead.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const missing: string[] = [];
const sipp = process.env.SIPP_BIN ?? 'sipp';
const sippRun = spawnSync(sipp, ['-v'], { encoding: 'utf8' });
const sippVersion = /SIPp v[\d.]+/.exec(`${sippRun.stdout ?? ''}${sippRun.stderr ?? ''}`)?.[0];
if (sippRun.error || !sippVersion) missing.push('sip-tester');
const kamailio = spawnSync('kamailio', ['-v'], { encoding: 'utf8' });
const kamailioVersion = /kamailio [\d.]+/.exec(kamailio.stdout ?? '')?.[0];
if (kamailio.error || !kamailioVersion) missing.push('kamailio');
const dnsmasqBin = process.env.DNSMASQ_BIN ?? (existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq');
const dnsmasq = spawnSync(dnsmasqBin, ['--version'], { encoding: 'utf8' });
const dnsmasqVersion = /Dnsmasq version [\d.]+/.exec(dnsmasq.stdout ?? '')?.[0];
if (dnsmasq.error || !dnsmasqVersion) missing.push('dnsmasq-base');
// The registry tests run against a real PostgreSQL too (test/helpers/postgres.ts starts its own from these binaries).
const postgresRoot = '/usr/lib/postgresql';
const postgresVersion = existsSync(postgresRoot)
  ? readdirSync(postgresRoot).find((v) => existsSync(`${postgresRoot}/${v}/bin/initdb`))
  : undefined;
if (!postgresVersion) missing.push('postgresql');
if (missing.length) {
  console.error(
    `The end-to-end tests need SIPp, Kamailio, dnsmasq and PostgreSQL: apt-get install -y ${missing.join(' ')}`,
  );
  process.exit(1);
}
console.log(`using ${sippVersion}, ${kamailioVersion}, ${dnsmasqVersion}, PostgreSQL ${postgresVersion}`);
