import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // ORT sessions use their own threads; on 2 cores two test files at a time is the sweet spot.
    maxWorkers: 2,
  },
});
