/**
 * One place that decides how a training step runs: one `Trainer` session (with N intra-op threads), or,
 * when asked, N data-parallel worker threads (each a 1-thread session on a slice of the batch, autotuned
 * gradient formulations). Measured on the shared 2-core machine (bench, alternating rounds), one session
 * × 2 threads beat 2 workers on cnn, cnn3, resnet and inception, so the session stays the default until a
 * quiet-machine run of `npm run bench -- --what train` (which measures both) says otherwise.
 */

import { autotuneRules } from '../autotune/autotune.ts';
import type { Module } from '../layers/index.ts';
import { Trainer, type TrainerOptions } from '../trainer.ts';
import { ParallelTrainer, type ParallelTrainerOptions } from './parallel-trainer.ts';

/** What the training loop needs of a trainer; `Trainer` and `ParallelTrainer` both are one. */
export type AnyTrainer = Pick<
  Trainer,
  'step' | 'evaluate' | 'weights' | 'state' | 'restore' | 'release' | 'provider' | 'steps'
>;

export type Parallelism = 'workers' | 'session';

export interface CreateTrainerOptions extends TrainerOptions {
  /**
   * With `threads` > 1 on the CPU: 'session' (the default) gives one session that many intra-op threads;
   * 'workers' splits each batch over that many worker threads (BatchNorm statistics then come from each
   * slice, like DDP without SyncBN).
   */
  parallelism?: Parallelism;
  /** Run batches in pieces of at most this many images and accumulate their gradients (CPU). */
  microBatch?: number;
  /**
   * Time the candidate gradient formulations for this model's shapes (cached in `cacheDir`) and build
   * the step with the fastest; false (the default) builds today's formulations, reproducibly. Applies
   * to worker steps (threads > 1 on the CPU).
   */
  autotune?: { cacheDir: string } | false;
  /** The batch size the loop will use (what the autotuner measures with; default 64). */
  batchSize?: number;
}

/** How `createTrainer` will run a step with these options, for logs and benchmark tables. */
export function describeParallelism(options: Pick<CreateTrainerOptions, 'threads' | 'device' | 'parallelism'>) {
  const threads = options.threads ?? 1;
  return usesWorkers(options) ? `${threads} workers` : `1 session × ${threads} thread${threads > 1 ? 's' : ''}`;
}

function usesWorkers(options: Pick<CreateTrainerOptions, 'threads' | 'device' | 'parallelism' | 'microBatch'>) {
  const cpu = (options.device ?? 'cpu') === 'cpu';
  return (
    cpu && (options.parallelism ?? 'workers') === 'workers' && ((options.threads ?? 1) > 1 || !!options.microBatch)
  );
}

export async function createTrainer(module: Module, options: CreateTrainerOptions): Promise<AnyTrainer> {
  if (!usesWorkers(options)) return Trainer.create(module, options);
  const workers = options.threads ?? 1;
  let rules: ParallelTrainerOptions['rules'];
  if (options.autotune) {
    // Each session run sees one worker's slice (or one micro-batch) of the batch.
    const slice = Math.ceil((options.batchSize ?? 64) / workers);
    const batch = Math.min(slice, options.microBatch ?? slice);
    ({ rules } = await autotuneRules(module, {
      batch,
      cacheDir: options.autotune.cacheDir,
      onNotice: options.onNotice,
    }));
  }
  return ParallelTrainer.create(module, { ...options, workers, threads: 1, rules });
}
