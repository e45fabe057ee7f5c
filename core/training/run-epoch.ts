/**
 * One pass over the training set, the loop both the CLI (train/loop.ts) and the browser's /train
 * worker run: the learning rate from the schedule, one Trainer step per batch, a stop at the first
 * non-finite loss, and the epoch's training figures.
 */
import type { BatchStream } from './batches.ts';
import { learningRate, type ScheduleName } from './schedule.ts';

/** The part of a Trainer (one session or data-parallel workers) an epoch needs. */
export interface SteppingTrainer {
  readonly steps: number;
  step(images: Float32Array, labels: ArrayLike<number>, lr: number): Promise<{ loss: number; correct: number }>;
}

/** What every step reports: this batch's figures, the epoch's running means and speed. */
export interface StepProgress {
  epoch: number;
  /** 1-based index of the batch just trained. */
  batch: number;
  batches: number;
  batchLoss: number;
  /** Percent of this batch answered right. */
  batchAccuracy: number;
  /** Mean loss and accuracy (percent) over the epoch so far. */
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface EpochFigures {
  trainLoss: number;
  trainAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
  /** The learning rate of the epoch's last step. */
  lr: number;
}

export interface EpochOptions {
  schedule: ScheduleName;
  /** The schedule's peak (or constant) learning rate. */
  lr: number;
  /** Steps in the whole run, for the schedule. */
  totalSteps: number;
  /** Write every batch into the same buffers (the CLI); the browser keeps them apart. */
  reuseBatches?: boolean;
  /** This epoch's images as they are, the stream's augmentation off. */
  plain?: boolean;
  onStep?: (progress: StepProgress) => void | Promise<void>;
  /** Checked after every step: true ends the epoch early. */
  shouldStop?: () => boolean;
}

export async function runEpoch(
  trainer: SteppingTrainer,
  stream: BatchStream,
  epoch: number,
  options: EpochOptions,
): Promise<EpochFigures> {
  const started = performance.now();
  let [lossSum, correct, seen, batchIndex, lr] = [0, 0, 0, 0, options.lr];
  for (const batch of stream.epoch({ reuse: options.reuseBatches ?? false, plain: options.plain ?? false })) {
    lr = learningRate(options.schedule, options.lr, trainer.steps, options.totalSteps);
    const result = await trainer.step(batch.images, batch.labels, lr);
    // Stop at the first sign: every step after a NaN is wasted, and its history could not be saved.
    if (!Number.isFinite(result.loss))
      throw new Error(
        `non-finite loss (${result.loss}) at epoch ${epoch}, batch ${batchIndex + 1}: the run diverged (try a lower --lr)`,
      );
    lossSum += result.loss * batch.size;
    correct += result.correct;
    seen += batch.size;
    batchIndex++;
    await options.onStep?.({
      epoch,
      batch: batchIndex,
      batches: stream.batchesPerEpoch,
      batchLoss: result.loss,
      batchAccuracy: (100 * result.correct) / batch.size,
      loss: lossSum / seen,
      accuracy: (100 * correct) / seen,
      imagesPerSecond: seen / ((performance.now() - started) / 1000),
    });
    if (options.shouldStop?.()) break;
  }
  const seconds = (performance.now() - started) / 1000;
  return {
    trainLoss: lossSum / Math.max(seen, 1),
    trainAccuracy: (100 * correct) / Math.max(seen, 1),
    seconds,
    imagesPerSecond: seen / seconds,
    lr,
  };
}
