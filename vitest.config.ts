import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run if any test touched the user's runs/ or models/.
    setupFiles: ['test/helpers/user-files-guard.ts'],
    testTimeout: 60_000,
    // ORT sessions use their own threads; on 2 cores two test files at a time is the sweet spot.
    maxWorkers: 2,
  },
});
