import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // SIPp end-to-end tests start real processes; give them room but keep the suite bounded.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // SIPp tests bind ports and spawn processes; run files in parallel workers but not too many on 2 cores.
    maxWorkers: 2,
  },
});
