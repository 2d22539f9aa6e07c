/**
 * Test certificates made with the `openssl` command line, in a temp directory: a CA, and server certificates signed by
 * it for given DNS names and IP addresses. Keys are P-256 (fast to make); everything is valid for two days and lives
 * only as long as the test run.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface KeyPair {
  /** PEM files. */
  certFile: string;
  keyFile: string;
}

export interface TestPki {
  dir: string;
  /** A new CA: `name` is its CN. */
  ca(name: string): KeyPair;
  /** A server certificate for `names` (DNS) and `ips`, signed by `ca`; the first name is the CN. */
  server(ca: KeyPair, file: string, opts: { names: string[]; ips?: string[] }): KeyPair;
  remove(): void;
}

const OPENSSL = 'openssl';
const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

function openssl(args: string[], cwd: string): void {
  execFileSync(OPENSSL, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function createTestPki(): TestPki {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kg-pki-'));
  let serial = Date.now();
  const file = (name: string): string => path.join(dir, name);
  return {
    dir,
    ca(name) {
      const base = name.replace(/\W+/g, '-');
      const pair = { certFile: file(`${base}.pem`), keyFile: file(`${base}.key`) };
      openssl(
        [
          'req',
          '-x509',
          ...EC,
          '-keyout',
          pair.keyFile,
          '-out',
          pair.certFile,
          '-days',
          '2',
          '-subj',
          `/CN=${name}`,
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,keyCertSign,cRLSign',
        ],
        dir,
      );
      return pair;
    },
    server(ca, base, opts) {
      const pair = { certFile: file(`${base}.pem`), keyFile: file(`${base}.key`) };
      const csr = file(`${base}.csr`);
      const ext = file(`${base}.ext`);
      const san = [...opts.names.map((n) => `DNS:${n}`), ...(opts.ips ?? []).map((ip) => `IP:${ip}`)].join(',');
      fs.writeFileSync(
        ext,
        `subjectAltName=${san}\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n`,
      );
      openssl(['req', ...EC, '-keyout', pair.keyFile, '-out', csr, '-subj', `/CN=${opts.names[0] ?? 'server'}`], dir);
      serial += 1;
      openssl(
        [
          'x509',
          '-req',
          '-in',
          csr,
          '-CA',
          ca.certFile,
          '-CAkey',
          ca.keyFile,
          '-set_serial',
          String(serial),
          '-days',
          '2',
          '-extfile',
          ext,
          '-out',
          pair.certFile,
        ],
        dir,
      );
      return pair;
    },
    remove() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
