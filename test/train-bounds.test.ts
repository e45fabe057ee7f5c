/**
 * Numbers that came in unchecked: `--threads 1000` started ~110 workers (2 GB, no output for a minute),
 * `--batch-size 1e9` died with "Invalid typed array length", and `--resume` of a hand-edited config.json
 * with "undefined is not available: undefined". Each is now bounded or refused in one line naming it.
 */

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { LIMITS } from '../core/training/run-config-schema.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { main } from '../train/cli/train.ts';
import { trainRun } from '../train/loop.ts';
import { failingCli, passingCli } from './helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'bounds-'));
const train = (...args: string[]) => passingCli(main, ...args);
const failure = (...args: string[]) => failingCli(main, ...args);
const runConfig: TrainConfig = { ...TUTORIAL_RECIPE, model: 'cnn', epochs: 1 };

/** A run directory holding only `config` as its config.json (what a hand edit leaves). */
function runWithConfig(config: unknown): string {
  const dir = tmp();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  return dir;
}

describe('bounded flags and configs', () => {
  it('--threads above the core count trains with one thread per core and says so', async () => {
    const out = join(tmp(), 'run');
    const started = performance.now();
    const { stdout, stderr } = await train(
      ...['--threads', '1000', '--epochs', '1', '--limit', '64', '--no-autotune', '--out', out],
    );
    const cores = availableParallelism();
    expect(stderr.trim()).toBe(`notice: --threads 1000 is more than this machine's ${cores} cores; using ${cores}`);
    expect(stdout).toMatch(/^done: test accuracy/m);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).threads).toBe(cores);
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 90_000);

  it('refuses out-of-range numbers in one line each, before any work', async () => {
    const [batch, epochs, seed, notNumber] = await Promise.all([
      failure('--batch-size', '1e9'),
      failure('--epochs', '1e9'),
      failure('--seed', '1e300'),
      failure('--threads', 'many'),
    ]);
    expect(batch).toBe(
      `error: option '--batch-size <n>' argument '1e9' is invalid. must be at most ${LIMITS.batchSize}.`,
    );
    expect(epochs).toBe(`error: option '--epochs <n>' argument '1e9' is invalid. must be at most ${LIMITS.epochs}.`);
    expect(seed).toBe("error: option '--seed <n>' argument '1e300' is invalid. must be at most 4294967295.");
    expect(notNumber).toBe("error: option '--threads <n>' argument 'many' is invalid. must be a positive integer.");
  }, 90_000);

  it('--resume of a hand-edited config.json names the bad or missing fields in one line', async () => {
    const nonsense = runWithConfig({ ...runConfig, batchSize: 'lots', threads: 1e6, model: 'lenet' });
    const missing = runWithConfig({ model: 'cnn', epochs: 1 });
    const notAnObject = runWithConfig([1, 2, 3]);
    const [a, b, c] = await Promise.all([
      failure('--resume', nonsense),
      failure('--resume', missing),
      failure('--resume', notAnObject),
    ]);
    expect(a).toBe(
      `error: ${join(nonsense, 'config.json')} is not a valid run config: model: Invalid option: expected one of "mlp"|"cnn"|"cnn3"|"inception"|"resnet"|"resnet-scaled"|"resnet-convshortcut"|"densenet"|"fast-cnn"|"cnn7"|"cnn7-wide"|"cnn7-wider"|"cnn9-wide"; batchSize: Invalid input: expected number, received string; threads: Too big: expected number to be <=${LIMITS.threads}`,
    );
    expect(b).toMatch(
      new RegExp(
        `^error: ${join(missing, 'config.json')} is not a valid run config: batchSize: Invalid input: expected number, received undefined; lr: `,
      ),
    );
    expect(b.split('\n')).toHaveLength(1);
    expect(c).toBe(
      `error: ${join(notAnObject, 'config.json')} is not a valid run config: config: Invalid input: expected object, received array`,
    );
    // A key train does not know is refused, not dropped (a misspelt setting would change nothing silently);
    // so is one only an object's prototype has.
    const misspelt = runWithConfig({ ...runConfig, lR: 0.1, toString: 1 });
    expect(await failure('--resume', misspelt)).toBe(
      `error: ${join(misspelt, 'config.json')} is not a valid run config: "lR", "toString": not a setting train knows`,
    );
  }, 90_000);

  it('the library checks the same bounds, and a batch as large as allowed trains a smaller set as one batch', async () => {
    const [trainSet, testSet] = await Promise.all([loadMnist('train'), loadMnist('test')]);
    const data = { train: take(trainSet, 100), test: take(testSet, 64) as Dataset };
    await expect(trainRun({ config: { ...runConfig, batchSize: 1e9 }, dir: tmp(), data })).rejects.toThrow(
      'the training config is not a valid run config: batchSize: Too big: expected number to be <=4096',
    );
    const [record] = await trainRun({ config: { ...runConfig, batchSize: LIMITS.batchSize }, dir: tmp(), data });
    expect(record?.epoch).toBe(1); // one batch of all 100 images
  }, 60_000);
});
