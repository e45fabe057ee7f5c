/**
 * The training loop: epochs of shuffled batches through the Trainer, the tutorial's log lines, a test
 * evaluation, a checkpoint and the history after every epoch; resumable from its checkpoint.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { DEFAULT_AUGMENT } from './data/augment.ts';
import { BatchStream, normalizedSplit } from './data/batches.ts';
import { type Dataset, loadMnist, take } from './data/mnist.ts';
import { optimizerFor } from './optim/from-config.ts';
import { type CreateTrainerOptions, createTrainer } from './parallel/create-trainer.ts';
import { Rng } from './random.ts';
import type { TrainConfig } from './run-config.ts';
import { type EpochRecord, RUN_FILES, readHistory, writeConfig, writeHistory } from './run-dir.ts';
import { learningRate } from './schedule.ts';
import { ZOO } from './zoo/index.ts';

/** How often the tutorial prints its running loss. */
const LOG_EVERY = 300;

export interface LoopEvents {
  /** The tutorial's lines and our notices. */
  log?: (line: string) => void;
  /** After every step: progress within the epoch. */
  progress?: (p: {
    epoch: number;
    batch: number;
    batches: number;
    loss: number;
    accuracy: number;
    imagesPerSecond: number;
  }) => void;
  epochStart?: (epoch: number, batches: number) => void;
  epochEnd?: (record: EpochRecord) => void;
}

export interface LoopOptions {
  config: TrainConfig;
  /** The run directory. */
  dir: string;
  /** Continue from the run directory's checkpoint. */
  resume?: boolean;
  events?: LoopEvents;
  /** Stop cleanly after the epoch during which this is aborted (the checkpoint is then complete). */
  signal?: AbortSignal;
  /** Data to use instead of loading MNIST (tests). */
  data?: { train: Dataset; test: Dataset };
  /** Split batches over `threads` worker threads instead of one session with that many threads. */
  parallelism?: CreateTrainerOptions['parallelism'];
  /** Per-shape autotuning of the worker step's gradient formulations (off by default; the CLI turns it on). */
  autotune?: CreateTrainerOptions['autotune'];
}

const format = (n: number, width: number) => String(n).padStart(width);

export async function trainRun({
  config,
  dir,
  resume = false,
  events = {},
  signal,
  data,
  parallelism,
  autotune = false,
}: LoopOptions): Promise<EpochRecord[]> {
  const log = events.log ?? (() => {});
  const [train, test] = data ? [data.train, data.test] : await Promise.all([loadMnist('train'), loadMnist('test')]);
  const trainSet = take(train, config.limit);
  const testSet = normalizedSplit(test);
  await mkdir(dir, { recursive: true });

  const trainer = await createTrainer(ZOO[config.model].build(), {
    optimizer: optimizerFor(config),
    labelSmoothing: config.labelSmoothing,
    seed: config.seed,
    device: config.device,
    threads: config.threads,
    onNotice: log,
    parallelism,
    autotune,
    batchSize: config.batchSize,
  });
  const stream = new BatchStream(
    trainSet,
    config.batchSize,
    new Rng(config.seed),
    config.augment ? DEFAULT_AUGMENT : undefined,
  );
  let history: EpochRecord[] = [];
  let firstEpoch = 1;
  if (resume) {
    const checkpoint = await loadCheckpoint(join(dir, RUN_FILES.checkpoint));
    trainer.restore(checkpoint.trainer);
    stream.rng.setState(checkpoint.dataRngState);
    history = (await readHistory(dir)).slice(0, checkpoint.epoch);
    firstEpoch = checkpoint.epoch + 1;
    log(`resuming ${dir} after epoch ${checkpoint.epoch} (step ${checkpoint.trainer.stepCount})`);
  } else {
    await writeConfig(dir, config);
  }
  log(
    `model ${config.model} on ${trainer.provider}, ${trainSet.count} training images, batch ${config.batchSize}, ${config.optimizer} lr ${config.lr}`,
  );

  const totalSteps = config.epochs * stream.batchesPerEpoch;
  try {
    for (let epoch = firstEpoch; epoch <= config.epochs; epoch++) {
      events.epochStart?.(epoch, stream.batchesPerEpoch);
      const started = performance.now();
      let [lossSum, correct, seen, runningLoss, batchIndex, lr] = [0, 0, 0, 0, 0, config.lr];
      for (const batch of stream.epoch()) {
        lr = learningRate(config.schedule, config.lr, trainer.steps, totalSteps);
        const result = await trainer.step(batch.images, batch.labels, lr);
        lossSum += result.loss * batch.size;
        correct += result.correct;
        seen += batch.size;
        runningLoss += result.loss;
        batchIndex++;
        if (batchIndex % LOG_EVERY === 0) {
          log(`[${epoch}, ${format(batchIndex, 5)}] loss: ${(runningLoss / LOG_EVERY).toFixed(3)}`);
          runningLoss = 0;
        }
        const elapsed = (performance.now() - started) / 1000;
        events.progress?.({
          epoch,
          batch: batchIndex,
          batches: stream.batchesPerEpoch,
          loss: lossSum / seen,
          accuracy: (100 * correct) / seen,
          imagesPerSecond: seen / elapsed,
        });
      }
      const seconds = (performance.now() - started) / 1000;
      const evaluation = await trainer.evaluate(testSet.images, testSet.labels);
      log(`Accuracy on test set: ${Math.floor(evaluation.accuracy)} % [${evaluation.correct}/${evaluation.total}]`);
      const record: EpochRecord = {
        epoch,
        trainLoss: lossSum / seen,
        trainAccuracy: (100 * correct) / seen,
        testLoss: evaluation.loss,
        testAccuracy: evaluation.accuracy,
        seconds,
        imagesPerSecond: seen / seconds,
        lr,
      };
      history.push(record);
      await saveCheckpoint(join(dir, RUN_FILES.checkpoint), {
        epoch,
        trainer: trainer.state(),
        dataRngState: stream.rng.getState(),
      });
      await writeHistory(dir, config.model, history);
      events.epochEnd?.(record);
      if (signal?.aborted) break;
    }
  } finally {
    await trainer.release();
  }
  return history;
}
