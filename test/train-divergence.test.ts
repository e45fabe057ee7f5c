/**
 * `--lr 1e30` exited 0 and wrote a checkpoint whose NaN history export and --resume then rejected
 * ("received null"). A diverged run now stops with one "non-finite … the run diverged" line and a
 * non-zero exit, and never writes its non-finite state: the last good checkpoint stays.
 */
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { loadCheckpoint, saveCheckpoint } from '../train/checkpoint.ts';
import { main } from '../train/cli/train.ts';
import { trainRun } from '../train/loop.ts';
import { readHistory } from '../train/run-dir.ts';
import { failingCli } from './helpers/cli.ts';

const tmp = () => mkdtempSync(join(tmpdir(), 'diverge-'));
const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const data = { train: take(train, 128), test: take(test, 64) as Dataset };
const config = (over: Partial<TrainConfig> = {}): TrainConfig => ({
  ...TUTORIAL_RECIPE,
  model: 'cnn',
  epochs: 1,
  batchSize: 32,
  ...over,
});
const DIVERGED = /^non-finite (test )?loss \(NaN\) (at epoch 1, batch \d+|after epoch 1): the run diverged/;

describe('a run that diverges', () => {
  it('stops with one line and writes no checkpoint of the non-finite state', async () => {
    const dir = tmp();
    await expect(trainRun({ config: config({ lr: 1e30 }), dir, data })).rejects.toThrow(DIVERGED);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('keeps the last good checkpoint, which still loads and resumes', async () => {
    const dir = tmp();
    await trainRun({ config: config({ lr: 0.01 }), dir, data });
    const good = await loadCheckpoint(join(dir, 'checkpoint.bin'));
    // The same run continued for a second epoch at a learning rate that blows it up: a resume refuses a changed
    // lr, so the checkpoint is rewritten without the settings it kept (as one from before they were kept).
    await saveCheckpoint(join(dir, 'checkpoint.bin'), { ...good, config: undefined });
    const blowUp = config({ epochs: 2, lr: 1e30 });
    await expect(trainRun({ config: blowUp, dir, data, resume: true })).rejects.toThrow(/the run diverged/);
    const kept = await loadCheckpoint(join(dir, 'checkpoint.bin'));
    expect(kept.epoch).toBe(1);
    expect(kept.trainer.tensors).toEqual(good.trainer.tensors);
    expect(await readHistory(dir)).toHaveLength(1);
    await trainRun({ config: config({ epochs: 2, lr: 0.01 }), dir, data, resume: true });
    expect(await readHistory(dir)).toHaveLength(2);
  });

  it('saveCheckpoint refuses NaN or Infinity in a tensor, naming it, and leaves the file alone', async () => {
    const path = join(tmp(), 'checkpoint.bin');
    const state = (w: Float32Array) => ({
      epoch: 0,
      trainer: { tensors: new Map([['fc.weight', w]]), stepCount: 0, rngState: 0 },
      dataRngState: 0,
    });
    await expect(saveCheckpoint(path, state(new Float32Array([1, Number.POSITIVE_INFINITY])))).rejects.toThrow(
      'fc.weight holds a non-finite value (Infinity at index 1): the run diverged',
    );
    expect(existsSync(path)).toBe(false);
  });

  it('npm run train -- --lr 1e30 exits 1 with the one line', async () => {
    const out = join(tmp(), 'run');
    const started = performance.now();
    const stderr = await failingCli(
      main,
      '--lr',
      '1e30',
      '--limit',
      '256',
      '--epochs',
      '2',
      '--no-autotune',
      '--out',
      out,
    );
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr.replace(/^error: /, '')).toMatch(DIVERGED);
    expect(existsSync(join(out, 'checkpoint.bin'))).toBe(false);
    expect(performance.now() - started).toBeLessThan(60_000);
  }, 90_000);
});
