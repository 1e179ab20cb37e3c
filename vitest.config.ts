import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    maxWorkers: 2,
    // Test files open better-sqlite3 databases in the worker itself: keep them from aborting it on Node 24.
    setupFiles: ['src/adapters/sqlitekeep.ts'],
  },
});
