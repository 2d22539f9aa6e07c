/**
 * Optional digest authentication of the PBX (besides the source allowlist): INVITEs without valid credentials get
 * 407 with a Proxy-Authenticate challenge (stateless nonce, see DigestServer). Enabled by PBX_AUTH_USERS.
 */
import { createHash } from 'node:crypto';
import { DigestServer } from '../sip/syntax/digest-server.ts';
import type { InboundCall } from '../sip/port.ts';
import type { HeaderList } from '../sip/port.ts';

export type PbxAuthResult =
  | { ok: true; username: string }
  | { ok: false; status: 407; headers: HeaderList; why: string };

/** "user:password,user2:password2" → map. A password may contain ':' (split at the first one). */
export function parseUserList(entries: string[]): Map<string, string> {
  const users = new Map<string, string>();
  for (const entry of entries) {
    const i = entry.indexOf(':');
    if (i <= 0 || i === entry.length - 1) throw new Error('PBX_AUTH_USERS entries must be user:password');
    users.set(entry.slice(0, i), entry.slice(i + 1));
  }
  return users;
}

export class PbxAuthenticator {
  readonly #server: DigestServer;

  constructor(realm: string, users: Map<string, string>) {
    this.#server = new DigestServer({
      realm,
      users: (name) => users.get(name),
      algorithm: 'MD5',
      secret: nonceSecret(realm, users),
    });
  }

  check(call: InboundCall): PbxAuthResult {
    const credentials = call.header('Proxy-Authorization');
    if (!credentials) return this.#challenge(false, 'no_credentials');
    const verdict = this.#server.verify(credentials, 'INVITE');
    if (verdict.ok) return { ok: true, username: verdict.username };
    return this.#challenge(verdict.stale === true, verdict.reason);
  }

  #challenge(stale: boolean, why: string): PbxAuthResult {
    return { ok: false, status: 407, headers: [['Proxy-Authenticate', this.#server.challenge({ stale })]], why };
  }
}

/**
 * The key that signs our nonces, the same on every gateway configured with the same realm and users: behind a
 * dispatcher, the INVITE a PBX resends with credentials may reach another instance than the one that challenged it,
 * and after a restart a PBX still answers the nonce it was given. Derived from the passwords, so it is no new secret
 * to distribute, and whoever could forge a nonce with it knows a password already.
 */
function nonceSecret(realm: string, users: Map<string, string>): Buffer {
  const hash = createHash('sha256').update(`kallglot-pbx-nonce\0${realm}`);
  for (const [name, password] of [...users].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`\0${name}\0${password}`);
  }
  return hash.digest();
}
