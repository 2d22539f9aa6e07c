import { configDefaults, defineConfig } from 'vitest/config';

/**
 * The call-flow suites that also run with SIP_ENGINE=drachtio: the daemon's real drachtio-srf against the
 * drachtio-server double (test/e2e/engine.ts). The same test bodies, once per engine.
 */
const THROUGH_DRACHTIO = [
  'test/e2e/translated-call.test.ts',
  'test/e2e/kallglot-failures.test.ts',
  'test/e2e/translated-leg-failures.test.ts',
  'test/e2e/cancel.test.ts',
  'test/e2e/reinvite.test.ts',
  'test/e2e/session-timer.test.ts',
  'test/e2e/offer-answer.test.ts',
  // Beyond the list, for adapter paths of their own: a challenge sent to the PBX, drachtio-srf's digest
  // answer to Telnyx, REFER/NOTIFY inside a dialog, a 3xx relayed with its Contact.
  'test/e2e/pbx-auth.test.ts',
  'test/e2e/auth.test.ts',
  'test/e2e/refer.test.ts',
  'test/e2e/redirect.test.ts',
];

export default defineConfig({
  test: {
    // SIPp end-to-end tests start real processes; give them room but keep the suite bounded.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // SIPp tests bind ports and spawn processes; run files in parallel workers but not too many on 2 cores.
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        // test/cluster: several gateways, Kamailio and PostgreSQL at once, in `npm run test:cluster` (vitest.cluster.config.ts).
        test: {
          name: 'embedded',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, 'test/cluster/**'],
        },
      },
      {
        extends: true,
        test: { name: 'drachtio', include: THROUGH_DRACHTIO, env: { E2E_SIP_ENGINE: 'drachtio' } },
      },
    ],
  },
});
