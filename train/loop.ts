/**
 * The training loop: epochs of shuffled batches through the Trainer, the tutorial's log lines, a test
 * evaluation, then a checkpoint (the run's source of truth, history included) and its views
 * (history.json, plots) after every epoch; resumable from whatever a kill left on disk.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { augmentOptions } from '../core/training/augment.ts';
import { BatchStream, normalizedSplit } from '../core/training/batches.ts';
import { optimizerFor } from '../core/training/optim/from-config.ts';
import type { TrainConfig } from '../core/training/run-config.ts';
import { parseTrainConfig } from '../core/training/run-config-schema.ts';
import { runEpoch, type StepProgress } from '../core/training/run-epoch.ts';
import { WeightAverage } from '../core/training/weight-average.ts';
import { removeStaleTempFiles, type WriteFile, writeFileAtomic } from '../node/files.ts';
import { type Dataset, holdOut, loadMnist, take } from '../node/mnist.ts';
import { type Checkpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.ts';
import { type AnyTrainer, type CreateTrainerOptions, createTrainer } from './parallel/create-trainer.ts';
import {
  checkHeldOut,
  type EpochRecord,
  OWN_FILES,
  prepareRunDir,
  RUN_FILES,
  readHistory,
  writeConfig,
  writeHistory,
} from './run-dir.ts';

/** How often the tutorial prints its running loss. */
const LOG_EVERY = 300;

export interface LoopEvents {
  /** The tutorial's lines and our notices. */
  log?: (line: string) => void;
  /** After every step: progress within the epoch. */
  progress?: (p: StepProgress) => void;
  epochStart?: (epoch: number, batches: number) => void;
  epochEnd?: (record: EpochRecord) => void;
}

export interface LoopOptions {
  config: TrainConfig;
  /** The run directory. */
  dir: string;
  /** Continue from the run directory's checkpoint (from epoch 1 when a kill came before the first one). */
  resume?: boolean;
  /** Start a new run in a directory that already holds files, replacing the run there. */
  overwrite?: boolean;
  events?: LoopEvents;
  /** Stop cleanly after the epoch during which this is aborted (the checkpoint is then complete). */
  signal?: AbortSignal;
  /** Data to use instead of loading MNIST (tests). */
  data?: { train: Dataset; test: Dataset };
  /** How files are written (atomically by default; tests inject failures). */
  write?: WriteFile;
  /** Split batches over `threads` worker threads or not (default: config.parallelism, then the model's default). */
  parallelism?: CreateTrainerOptions['parallelism'];
  /** Per-shape autotuning of the worker step's gradient formulations (off by default; the CLI turns it on). */
  autotune?: CreateTrainerOptions['autotune'];
  /** The provider config.device resolved to (`auto`'s pick, from probeDevice), so the step is built for it. */
  device?: CreateTrainerOptions['device'];
}

const format = (n: number, width: number) => String(n).padStart(width);

/**
 * The images to train on and the set to evaluate after each epoch: the test set, or with --validation the
 * training set's last N images (the test set is then not even loaded), with --limit taking the first images
 * of the rest, so the held-out images depend on N alone and runs of any --limit are ranked on the same ones.
 */
async function loadSplits(config: TrainConfig, given?: LoopOptions['data']) {
  const train = given?.train ?? (await loadMnist('train'));
  if (config.validation !== undefined) {
    const [rest, held] = holdOut(train, config.validation);
    if (config.limit !== undefined && config.limit > rest.count)
      throw new Error(
        `--limit ${config.limit} with --validation ${config.validation}: only ${rest.count} of the ${train.count} training images are left to train on`,
      );
    return {
      trainSet: take(rest, config.limit),
      evaluation: { set: 'validation' as const, data: normalizedSplit(held) },
    };
  }
  const test = given?.test ?? (await loadMnist('test'));
  return { trainSet: take(train, config.limit), evaluation: { set: 'test' as const, data: normalizedSplit(test) } };
}

/** The one place a run's trainer is made: one session, or data-parallel workers (train/parallel). */
function trainerFor(options: LoopOptions, log: (line: string) => void): Promise<AnyTrainer> {
  const { config } = options;
  return createTrainer(ZOO[config.model].build({ dropout: config.dropout }), {
    optimizer: optimizerFor(config),
    labelSmoothing: config.labelSmoothing,
    seed: config.seed,
    device: options.device ?? config.device,
    threads: config.threads,
    onNotice: log,
    parallelism: options.parallelism ?? config.parallelism,
    autotune: options.autotune ?? false,
    batchSize: config.batchSize,
  });
}

/**
 * The checkpoint `--resume` continues from, if any, read before any data is loaded or file written: its
 * history must have been evaluated on the set (and held-out count) config.json now asks for.
 */
async function readResumePoint(options: LoopOptions): Promise<Checkpoint | undefined> {
  const { config, dir } = options;
  const checkpointPath = join(dir, RUN_FILES.checkpoint);
  if (!options.resume || !existsSync(checkpointPath)) return undefined;
  const checkpoint = await loadCheckpoint(checkpointPath);
  if (!checkpoint.history) {
    // A version-1 checkpoint: its history is in history.json.
    checkpoint.history = (await readHistory(dir)).slice(0, checkpoint.epoch);
    if (checkpoint.history.length < checkpoint.epoch)
      throw new Error(`${dir}: history.json has fewer epochs than the checkpoint's ${checkpoint.epoch}`);
  }
  checkHeldOut(checkpoint.history, config, dir);
  const edited = editedSettings(config, checkpoint.config);
  if (edited.length > 0)
    throw new Error(
      `${join(dir, RUN_FILES.config)} differs from the settings the run trained with (its checkpoint): ${edited.join(', ')}; a resumed run keeps its own (only epochs, threads and device may change): put them back, or start a new run`,
    );
  return checkpoint;
}

/**
 * Settings a resume may change: the epochs, and where it runs — the threads (a machine with fewer cores uses
 * fewer) and the device (a run begun on a GPU that has gone can go on on the CPU).
 */
const RESUMABLE_CHANGES = new Set(['epochs', 'threads', 'device']);

/** Each setting of `config` that is not the one the run trained with (`trained`, from its checkpoint). */
function editedSettings(config: TrainConfig, trained: Record<string, unknown> | undefined): string[] {
  if (!trained) return []; // a checkpoint from before configs were kept in it
  const now = config as unknown as Record<string, unknown>;
  const keys = new Set([...Object.keys(now), ...Object.keys(trained)]);
  const text = (v: unknown) => (v === undefined ? 'none' : (JSON.stringify(v) ?? String(v)));
  // Shown cut short: a checkpoint's header is a file like any other, and may hold a long value.
  const shown = (v: unknown) => text(v).slice(0, 80);
  return [...keys]
    .filter((key) => !RESUMABLE_CHANGES.has(key) && text(now[key]) !== text(trained[key]))
    .slice(0, 10)
    .map((key) => `${key} ${shown(now[key])} (it trained with ${shown(trained[key])})`);
}

/** Set the run directory up (a resumed run: its config and the views of its checkpoint's history). */
async function openRunDir(options: LoopOptions, write: WriteFile, checkpoint?: Checkpoint): Promise<void> {
  const { config, dir } = options;
  if (!options.resume) await prepareRunDir(dir, options.overwrite);
  else await removeStaleTempFiles(dir, OWN_FILES);
  await writeConfig(dir, config, write); // on resume: the same config, or a new number of epochs
  // A kill between the checkpoint and its views leaves them stale: rewrite them from the checkpoint.
  if (checkpoint?.history) await writeHistory(dir, config.model, checkpoint.history, write);
}

interface EpochContext {
  config: TrainConfig;
  trainer: AnyTrainer;
  stream: BatchStream;
  totalSteps: number;
  events: LoopEvents;
  log: (line: string) => void;
  /** With --ema: the weights' moving average, folded in after every step. */
  average?: WeightAverage;
}

/** One pass over the training set (core's runEpoch) with the tutorial's loss lines and progress. */
async function trainEpoch({ config, trainer, stream, totalSteps, events, log, average }: EpochContext, epoch: number) {
  events.epochStart?.(epoch, stream.batchesPerEpoch);
  let runningLoss = 0;
  return runEpoch(trainer, stream, epoch, {
    schedule: config.schedule,
    lr: config.lr,
    totalSteps,
    reuseBatches: true,
    plain: epoch > config.epochs - (config.plainEpochs ?? 0),
    onStep: (progress) => {
      average?.update(trainer.weights(), trainer.steps - 1);
      runningLoss += progress.batchLoss;
      if (progress.batch % LOG_EVERY === 0) {
        log(`[${epoch}, ${format(progress.batch, 5)}] loss: ${(runningLoss / LOG_EVERY).toFixed(3)}`);
        runningLoss = 0;
      }
      events.progress?.(progress);
    },
  });
}

/** With --ema, the weights' average: from the checkpoint resumed (which must have kept one), else the trainer's start. */
function averageFor(config: TrainConfig, trainer: AnyTrainer, checkpoint?: Checkpoint): WeightAverage | undefined {
  if (config.ema === undefined) {
    if (checkpoint?.average)
      throw new Error('the checkpoint keeps a weight average, but config.json has no ema: the run cannot continue it');
    return undefined;
  }
  if (checkpoint && checkpoint.epoch > 0 && !checkpoint.average)
    throw new Error('the checkpoint has no weight average, but config.json asks for --ema: the run cannot continue it');
  const weights = trainer.weights();
  const average = checkpoint?.average;
  if (average) {
    const bad = [...weights].find(([name, w]) => average.get(name)?.length !== w.length);
    if (bad || average.size !== weights.size)
      throw new Error(
        `the checkpoint's weight average does not match the model${bad ? ` (${bad[0]})` : ''}: the run cannot continue it`,
      );
  }
  return WeightAverage.from(config.ema, average ?? weights);
}

export async function trainRun(given: LoopOptions): Promise<EpochRecord[]> {
  // Bounds and types checked once here, whichever way the config came (flags, config.json, the API).
  const options = { ...given, config: parseTrainConfig(given.config, 'the training config') };
  const { config, dir, events = {}, signal, write = writeFileAtomic } = options;
  const log = events.log ?? (() => {});
  const checkpoint = await readResumePoint(options);
  const { trainSet, evaluation } = await loadSplits(config, options.data);
  await openRunDir(options, write, checkpoint);
  const trainer = await trainerFor(options, log);
  try {
    const augment = augmentOptions(config);
    const stream = new BatchStream(trainSet, config.batchSize, new Rng(config.seed), augment);
    const history = [...(checkpoint?.history ?? [])];
    if (checkpoint) {
      trainer.restore(checkpoint.trainer);
      stream.rng.setState(checkpoint.dataRngState);
      log(`resuming ${dir} after epoch ${checkpoint.epoch} (step ${checkpoint.trainer.stepCount})`);
    }
    log(
      `model ${config.model} on ${trainer.provider}, ${trainSet.count} training images${evaluation.set === 'validation' ? ` (${evaluation.data.labels.length} held out for validation)` : ''}, batch ${config.batchSize}, ${config.optimizer} lr ${config.lr}`,
    );
    const average = averageFor(config, trainer, checkpoint);
    const totalSteps = config.epochs * stream.batchesPerEpoch;
    const context = { config, trainer, stream, totalSteps, events, log, average };
    for (let epoch = history.length + 1; epoch <= config.epochs; epoch++) {
      const trained = await trainEpoch(context, epoch);
      const { set, data } = evaluation;
      const averaged = average?.weights(); // evaluated, then checkpointed
      const tested = await trainer.evaluate(data.images, data.labels, undefined, averaged);
      log(`Accuracy on ${set} set: ${Math.floor(tested.accuracy)} % [${tested.correct}/${tested.total}]`);
      if (averaged) {
        // The run's model is the average; the weights as trained, for comparison.
        const raw = await trainer.evaluate(data.images, data.labels);
        log(`  (the averaged weights; as trained: ${raw.accuracy.toFixed(2)} %, loss ${raw.loss.toFixed(4)})`);
      }
      const record: EpochRecord = {
        epoch,
        ...trained,
        [`${set}Loss`]: tested.loss,
        [`${set}Accuracy`]: tested.accuracy,
        ...(set === 'validation' ? { validationImages: tested.total } : {}),
      };
      if (!Number.isFinite(tested.loss))
        throw new Error(
          `non-finite ${set} loss (${tested.loss}) after epoch ${epoch}: the run diverged (try a lower --lr)`,
        );
      history.push(record);
      const state = {
        epoch,
        trainer: trainer.state(),
        dataRngState: stream.rng.getState(),
        history,
        ...(averaged ? { average: averaged } : {}),
        config: { ...config },
      };
      await saveCheckpoint(join(dir, RUN_FILES.checkpoint), state, write); // the commit point
      await writeHistory(dir, config.model, history, write);
      events.epochEnd?.(record);
      if (signal?.aborted) break;
    }
    return history;
  } finally {
    await trainer.release();
  }
}
