import { defineConfig } from 'vitest/config';

/**
 * Two projects:
 * - `unit` (`*.unit.test.ts`): no server needed, run in parallel; `npm test -- --project unit` takes
 *   seconds on a machine with nothing installed.
 * - `integration` (every other `*.test.ts`): the machine's Redis, RabbitMQ and NATS plus private
 *   redis-server / nats-server processes. Files run one after another so that they never step on
 *   each other's servers.
 */
export default defineConfig({
  test: {
    reporters: ['default'],
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.unit.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/**/*.test.ts'],
          exclude: ['test/**/*.unit.test.ts', 'test/faults/**', '**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 30_000,
          hookTimeout: 30_000,
        },
      },
    ],
  },
});
