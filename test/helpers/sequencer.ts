/**
 * Longest files first, so the suite's tail is short: 2 cores run 3 files at a time, and a long file started
 * last keeps the run going alone. Vitest's own order uses durations from its cache (node_modules/.vite), which
 * a fresh clone lacks: it then sorts by file size, and small-but-slow files (gradient-models, train-faults,
 * photo-preprocess) started last, ~20 s after everything else had finished. test/durations.json keeps each
 * file's measured seconds for that case (refresh: `npx tsx test/helpers/update-durations.ts <vitest json report>`);
 * the cache, where there is one, knows this machine better.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

export const DURATIONS_FILE = join(import.meta.dirname, '..', 'durations.json');

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    const committed = JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) as Record<string, number>;
    const expectedMs = (file: TestSpecification) => {
      const path = relative(root, file.moduleId);
      return (
        this.ctx.cache.getFileTestResults(`${file.project.name}:${path}`)?.duration ?? (committed[path] ?? 0) * 1000
      );
    };
    return [...files].sort((a, b) => expectedMs(b) - expectedMs(a));
  }
}
