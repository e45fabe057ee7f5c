/**
 * A run directory survives a kill at every write boundary: a fault is injected at each file write of a
 * short run (before the write starts, or after a torn temp file was left beside the target), then the
 * run is resumed from what is on disk. The result must equal the uninterrupted run bit for bit.
 */
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type TrainConfig, TUTORIAL_RECIPE } from '../core/training/run-config.ts';
import { tempPathFor, type WriteFile, writeFileAtomic } from '../node/files.ts';
import { type Dataset, loadMnist, take } from '../node/mnist.ts';
import { loadCheckpoint } from '../train/checkpoint.ts';
import { trainRun } from '../train/loop.ts';
import { type EpochRecord, readHistory } from '../train/run-dir.ts';

const [train, test] = await Promise.all([loadMnist('train'), loadMnist('test')]);
const data = { train: take(train, 128), test: take(test, 64) as Dataset };
// AdamW, one-cycle and augmentation: optimizer state, the step count and the data RNG all must survive.
const config: TrainConfig = {
  ...TUTORIAL_RECIPE,
  model: 'cnn',
  epochs: 2,
  batchSize: 32,
  optimizer: 'adamw',
  lr: 2e-3,
  schedule: 'onecycle',
  augment: true,
};

class Killed extends Error {}
type Fault = 'before the write' | 'torn temp file';

/** The real atomic writer, except that write number `at` dies the way a SIGKILL would leave it. */
function dyingWriter(at: number, fault: Fault): { write: WriteFile; log: string[] } {
  const log: string[] = [];
  const write: WriteFile = async (path, content) => {
    log.push(basename(path));
    if (log.length === at) {
      if (fault === 'torn temp file') {
        const bytes = typeof content === 'string' ? Buffer.from(content) : content;
        mkdirSync(dirname(path), { recursive: true });
        writeFileSync(tempPathFor(path), bytes.subarray(0, bytes.length >> 1));
      }
      throw new Killed(`killed at write ${at} (${basename(path)}, ${fault})`);
    }
    await writeFileAtomic(path, content);
  };
  return { write, log };
}

/** What must not depend on interruptions: everything but wall-clock figures. */
const numbers = (history: EpochRecord[]) =>
  history.map(({ epoch, trainLoss, trainAccuracy, testLoss, testAccuracy, lr }) => ({
    epoch,
    trainLoss,
    trainAccuracy,
    testLoss,
    testAccuracy,
    lr,
  }));

async function outcome(dir: string) {
  const checkpoint = await loadCheckpoint(join(dir, 'checkpoint.bin'));
  const tensors = [...checkpoint.trainer.tensors].map(([name, t]) => [name, Buffer.from(t.buffer).toString('hex')]);
  return {
    files: readdirSync(dir).sort(),
    tensors,
    stepCount: checkpoint.trainer.stepCount,
    rngState: checkpoint.trainer.rngState,
    dataRngState: checkpoint.dataRngState,
    history: numbers(checkpoint.history ?? []),
    historyJson: numbers(await readHistory(dir)),
  };
}

describe('a run killed at any write', () => {
  it('resumes to exactly the uninterrupted run, with no temp file left', async () => {
    const straightDir = mkdtempSync(join(tmpdir(), 'faults-straight-'));
    const counting = dyingWriter(0, 'before the write');
    await trainRun({ config, dir: straightDir, data, write: counting.write });
    const writes = counting.log;
    // config.json, then per epoch: checkpoint.bin first, then the views.
    expect(writes.slice(0, 3)).toEqual(['config.json', 'checkpoint.bin', 'history.json']);
    expect(writes).toHaveLength(1 + config.epochs * 6);
    const expected = await outcome(straightDir);
    expect(expected.history).toEqual(expected.historyJson);

    let killPoints = 0;
    for (let at = 1; at <= writes.length; at++) {
      for (const fault of ['before the write', 'torn temp file'] as Fault[]) {
        const dir = mkdtempSync(join(tmpdir(), 'faults-'));
        const dying = dyingWriter(at, fault);
        await expect(trainRun({ config, dir, data, write: dying.write })).rejects.toThrow(Killed);
        await trainRun({ config, dir, data, resume: true });
        expect(await outcome(dir), `killed at write ${at} (${writes[at - 1]}, ${fault})`).toEqual(expected);
        killPoints++;
      }
    }
    expect(killPoints).toBe(2 * writes.length);
    console.log(`kill points tried: ${killPoints} (${writes.length} writes × 2 faults), every resume bit-identical`);
  }, 300_000);

  it('survives a second kill while the resume heals the run (config and views rewritten first)', async () => {
    const straightDir = mkdtempSync(join(tmpdir(), 'faults-straight-'));
    await trainRun({ config, dir: straightDir, data });
    const expected = await outcome(straightDir);
    // Killed right after epoch 1's checkpoint: its views are stale. Then the resume is killed at each of
    // its first writes (config.json, history.json, the four plots), and resumed once more.
    for (let at = 1; at <= 6; at++) {
      const dir = mkdtempSync(join(tmpdir(), 'faults-twice-'));
      await expect(trainRun({ config, dir, data, write: dyingWriter(3, 'torn temp file').write })).rejects.toThrow(
        Killed,
      );
      const resume = dyingWriter(at, 'torn temp file');
      await expect(trainRun({ config, dir, data, resume: true, write: resume.write })).rejects.toThrow(Killed);
      await trainRun({ config, dir, data, resume: true });
      expect(await outcome(dir), `resume killed at its write ${at} (${resume.log[at - 1]})`).toEqual(expected);
    }
  }, 300_000);
});
