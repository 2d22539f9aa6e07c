import { defineConfig } from 'vitest/config';

/**
 * `npm run test:cluster`: two gateways behind a real Kamailio dispatcher on one shared PostgreSQL registry
 * (test/cluster). The gateways bind 127.0.0.11 and 127.0.0.12 and Kamailio 127.0.0.10, so the files run one at a
 * time; each scenario waits for real timeouts (dead instance detection, dispatcher probes), hence the long limits.
 */
export default defineConfig({
  test: {
    include: ['test/cluster/**/*.test.ts'],
    testTimeout: 180_000,
    hookTimeout: 60_000,
    fileParallelism: false,
    maxWorkers: 1,
  },
});
