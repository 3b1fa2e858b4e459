import { defineConfig } from 'vitest/config';

/** The fault-injection suite (test/faults): `npm run test:faults`, apart from `npm test`. */
export default defineConfig({
  test: {
    reporters: ['default'],
    include: ['test/faults/**/*.test.ts'],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
