/** npm run compare: runs side by side as a table and plots, from run directories on disk. */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { main } from '../train/cli/compare.ts';
import { type EpochRecord, writeConfig, writeHistory } from '../train/run-dir.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

const compare = (...args: string[]) => passingCli(main, ...args);

const epoch = (n: number, testAccuracy: number, seconds: number): EpochRecord => ({
  epoch: n,
  trainLoss: 0.3 / n,
  trainAccuracy: testAccuracy - 0.5,
  testLoss: 0.2 / n,
  testAccuracy,
  seconds,
  imagesPerSecond: 60_000 / seconds,
  lr: 0.01,
});

async function runDir(root: string, name: string, model: 'cnn' | 'resnet', history: EpochRecord[]): Promise<string> {
  const dir = join(root, name);
  await writeConfig(dir, { ...TUTORIAL_RECIPE, model });
  await writeHistory(dir, model, history);
  return dir;
}

describe('npm run compare', () => {
  it('writes one table and the plots for several runs', async () => {
    const root = mkdtempSync(join(tmpdir(), 'compare-'));
    const a = await runDir(root, 'cnn', 'cnn', [epoch(1, 97.5, 10), epoch(2, 98.25, 12)]);
    const b = await runDir(root, 'long', 'resnet', [epoch(1, 98, 100), epoch(2, 99.5, 200), epoch(3, 99.25, 300)]);
    const out = join(root, 'out');
    const { stdout } = await compare(a, b, '--out', out);

    const table = readFileSync(join(out, 'comparison.md'), 'utf8');
    expect(stdout).toContain(table.split('\n').slice(2).join('\n').trim());
    // Label = model name, plus the directory name when it differs; best epoch; images over total time
    // (120,000 / 22 s, 180,000 / 600 s); time in s or min.
    expect(table).toContain('| cnn | 2 | 98.25% | 98.25% (2) | 0.1000 | 5455 | 22.0 s |');
    expect(table).toContain('| resnet (long) | 3 | 99.25% | 99.50% (2) | 0.0667 | 300 | 10.0 min |');
    expect(readdirSync(out).sort()).toEqual([
      'accuracy.png',
      'accuracy.svg',
      'comparison.json',
      'comparison.md',
      'loss.png',
      'loss.svg',
    ]);
    expect(readFileSync(join(out, 'accuracy.svg'), 'utf8')).toContain('resnet (long)');
  }, 60_000);

  it('answers a directory that is not a run with one line and exit code 1', async () => {
    expect(await failingCli(main, tmpdir())).toBe(`error: ${tmpdir()} is not a run directory (no config.json)`);
  }, 60_000);
});
