/**
 * `compare --out` wrote comparison.md and accuracy/loss plots over whatever had those names: a run's own
 * plots (`--out` a run directory) or the user's loss.png. It now replaces only an earlier comparison.
 */
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeComparison } from '../train/compare-runs.ts';
import type { EpochRecord } from '../train/run-dir.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'compare-out-'));
const record: EpochRecord = {
  epoch: 1,
  trainLoss: 0.3,
  trainAccuracy: 97,
  testLoss: 0.2,
  testAccuracy: 97.5,
  seconds: 10,
  imagesPerSecond: 6000,
  lr: 0.01,
};
const runs = [{ label: 'cnn', history: [record] }];
const snapshot = (dir: string) => readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]);

describe('compare --out', () => {
  it("refuses a folder holding a run's plots or the user's loss.png, and writes nothing", async () => {
    const dir = tmp();
    writeFileSync(join(dir, 'loss.png'), 'my plot');
    writeFileSync(join(dir, 'comparison.json'), '{"not": "ours"}');
    const before = snapshot(dir);
    await expect(writeComparison(dir, runs, 'two runs')).rejects.toThrow(
      `${dir} holds comparison.json, loss.png but no earlier comparison; choose another --out`,
    );
    expect(snapshot(dir)).toEqual(before);
  });

  it('replaces its own earlier comparison', async () => {
    const dir = tmp();
    await writeComparison(dir, runs, 'first');
    await writeComparison(dir, runs, 'second');
    expect(readFileSync(join(dir, 'comparison.md'), 'utf8')).toMatch(/^# second/);
  }, 60_000);
});
