import { defineConfig } from 'vitest/config';
import LongestFirst from './test/helpers/sequencer.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Fails the run if any test touched the user's runs/ or models/.
    setupFiles: ['test/helpers/user-files-guard.ts'],
    // One temporary folder for the whole run, removed at its end.
    globalSetup: ['test/helpers/temporary-root.ts'],
    testTimeout: 60_000,
    // Three files at a time on 2 cores: the suite leaves a core idle ~30% of the time with two (Chromium page
    // loads, process starts, servers waiting on sockets). Measured on the 2-vCPU EPYC: 277 s with 2, 236 s with 3,
    // 253 s with 4 (and more contention). Tests wait on conditions, never on time, so contention slows, not fails.
    maxWorkers: 3,
    sequence: { sequencer: LongestFirst },
  },
});
