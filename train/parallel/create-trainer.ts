/**
 * One place that decides how a training step runs: one `Trainer` session (with N intra-op threads), or
 * N data-parallel worker threads (each a 1-thread session on a slice of the batch, autotuned gradient
 * formulations). By default, with N > 1 on the CPU, workers run a model that has no BatchNorm (the step
 * equals one session's to float tolerance): with the native kernels and the update sharded in shared
 * memory they were the faster way for every such zoo model in every committed run since 2026-12-05's run e
 * (`npm run bench -- --what train`, batch 64, 2 threads) — mlp too, whose 1 MAC per parameter had kept it on
 * one session: workers +9% (AMD EPYC runs e, g), +22% (run h), +14% and +31% (Intel Xeon, 2026-12-05).
 * BatchNorm models keep one session unless asked, since workers change their batch statistics (per slice,
 * like DDP without SyncBN).
 */

import { emitForward, inspectModule } from '../../core/model/forward-graph.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { nodeRuntime } from '../../node/execution.ts';
import { nativeKernels } from '../../node/native-kernels.ts';
import { autotuneRules } from '../autotune/autotune.ts';
import {
  createNodeTrainer,
  resolveNodeDevice,
  type Trainer,
  type NodeTrainerOptions as TrainerOptions,
} from '../trainer.ts';
import { ParallelTrainer } from './parallel-trainer.ts';

/** What the training loop needs of a trainer; `Trainer` and `ParallelTrainer` both are one. */
export type AnyTrainer = Pick<
  Trainer,
  'step' | 'evaluate' | 'weights' | 'state' | 'restore' | 'release' | 'provider' | 'steps'
>;

export type Parallelism = 'workers' | 'session';

export interface CreateTrainerOptions extends TrainerOptions {
  /**
   * With `threads` > 1 on the CPU: 'session' gives one session that many intra-op threads; 'workers'
   * splits each batch over that many worker threads (BatchNorm statistics then come from each slice, like
   * DDP without SyncBN). Default: `defaultParallelism(module)`.
   */
  parallelism?: Parallelism;
  /**
   * Time the candidate gradient formulations for this model's shapes (cached in `cacheDir`) and build
   * the step with the fastest; false (the default) builds today's formulations, reproducibly. Applies
   * on the CPU (GPU providers get today's formulations); worker steps then also give faster workers
   * bigger slices (BatchNorm-free models; see balance.ts).
   */
  autotune?: { cacheDir: string } | false;
  /** The batch size the loop will use (what the autotuner measures with; default 64). */
  batchSize?: number;
  /**
   * Use the native kernels when they are built (node/native-kernels.ts): Conv gradients by the kernels
   * (the step runs as gradient graph → kernels → update, the sessions and kernels on the step's threads),
   * and the optimizer's update by its fused kernel in place (no update graph: the parameters never go
   * through ORT's outputs). Default true; false always runs the pure-ORT graph.
   */
  native?: boolean;
  /** With workers or native kernels: each participant's milliseconds of work after every step. */
  onCompute?: (participant: number, ms: number) => void;
}

type ParallelismOptions = Pick<CreateTrainerOptions, 'threads' | 'device' | 'parallelism' | 'native' | 'batchSize'>;

/** How `createTrainer` will run a step with these options, for logs and benchmark tables. */
export function describeParallelism(options: ParallelismOptions, module?: Module) {
  const threads = options.threads ?? 1;
  const nativeGradients =
    module !== undefined && (usesNativeConvWeights(options, module) || usesNativeLinearWeights(options, module));
  const native = nativeGradients || usesNativeUpdate(options);
  if (usesWorkers(options, module)) return native ? `${threads} workers, native kernels` : `${threads} workers`;
  // The native step on one thread is a 1-thread gradient session with the kernels after it.
  if (nativeGradients && threads === 1) return '1 thread, native kernels';
  const session = `1 session × ${threads} thread${threads > 1 ? 's' : ''}`;
  return nativeGradients ? `${session}, native kernels` : native ? `${session}, native update` : session;
}

/** Whether the optimizer's update runs as the native kernel (built with it, wanted, on the CPU). */
export function usesNativeUpdate(options: Pick<CreateTrainerOptions, 'device' | 'native'>): boolean {
  return options.native !== false && (options.device ?? 'cpu') === 'cpu' && !!nativeKernels()?.optimizerUpdate;
}

/** Whether the step computes Conv gradients natively: a model with Convs, the kernels built and wanted, on the CPU. */
export function usesNativeConvWeights(options: ParallelismOptions, module: Module): boolean {
  if (options.native === false || (options.device ?? 'cpu') !== 'cpu' || !nativeKernels()) return false;
  return emitForward(module).graph.nodes.some((node) => node.op_type === 'Conv');
}

/**
 * Whether some nn.Linear weight gradient runs on the machine's OpenBLAS (node/native-kernels.ts): the same
 * speed as ORT's Gemm, without handing dW out as a copy (mlp's first layer: 1.6 MB a step).
 */
export function usesNativeLinearWeights(options: ParallelismOptions, module: Module): boolean {
  if (options.native === false || (options.device ?? 'cpu') !== 'cpu' || !nativeKernels()?.linearWeightGradient)
    return false;
  const shapes = new Map(inspectModule(module).params.map((p) => [p.name, p.shape]));
  const worthIt = outweighsItsInputs(sliceOf(options, module));
  return emitForward(module).graph.nodes.some((node) => {
    const [outFeatures, inFeatures] = shapes.get(node.input[1] ?? '') ?? [];
    return node.op_type === 'Gemm' && !!outFeatures && !!inFeatures && worthIt(inFeatures, outFeatures);
  });
}

/** The images one session run sees: the whole batch, or one worker's slice of it. */
function sliceOf(options: ParallelismOptions, module: Module): number {
  return Math.ceil((options.batchSize ?? 64) / (usesWorkers(options, module) ? (options.threads ?? 1) : 1));
}

/**
 * Layers whose dW [out, in] is bigger than the X [n, in] and dY [n, out] that leave ORT in its place, for
 * `n` images a run: mlp's wide layers, not the conv models' small classifiers.
 */
export const outweighsItsInputs = (n: number) => (inFeatures: number, outFeatures: number) =>
  inFeatures * outFeatures > n * (inFeatures + outFeatures);

/** The default for a module: workers for BatchNorm-free models. */
export function defaultParallelism(module: Module): Parallelism {
  return inspectModule(module).params.every((p) => p.trainable) ? 'workers' : 'session';
}

function usesWorkers(options: Pick<CreateTrainerOptions, 'threads' | 'device' | 'parallelism'>, module?: Module) {
  const cpu = (options.device ?? 'cpu') === 'cpu';
  const parallelism = options.parallelism ?? (module ? defaultParallelism(module) : 'workers');
  return cpu && parallelism === 'workers' && (options.threads ?? 1) > 1;
}

export async function createTrainer(module: Module, given: CreateTrainerOptions): Promise<AnyTrainer> {
  // 'auto' is onnxruntime-node's to resolve; a caller's own runtime resolves it itself.
  const ours = !given.runtime || given.runtime === nodeRuntime;
  const options = given.device === 'auto' && ours ? { ...given, device: await resolveNodeDevice(given) } : given;
  const workers = usesWorkers(options, module);
  const slice = sliceOf(options, module);
  const native = usesNativeConvWeights(options, module);
  const tuned =
    options.autotune && (options.device ?? 'cpu') === 'cpu'
      ? await autotuneRules(module, {
          batch: slice,
          cacheDir: options.autotune.cacheDir,
          onNotice: options.onNotice,
          native,
        })
      : undefined;
  const rules = tuned?.rules;
  const nativeUpdate = usesNativeUpdate(options);
  const nativeLinear = usesNativeLinearWeights(options, module);
  if (!workers && !native && !nativeUpdate && !nativeLinear) return createNodeTrainer(module, { ...options, rules });
  // Tuned steps are for speed, not for identical sums run to run: they also balance the split by speed.
  // A native step without workers is one participant: its gradient session, then the kernels.
  const threads = options.threads ?? 1;
  return ParallelTrainer.create(module, {
    ...options,
    workers: workers ? threads : 1,
    threads: 1,
    sessionThreads: workers ? 1 : threads,
    rules,
    balance: !!options.autotune,
    nativeConvWeights: native,
    nativeLinearWeights: nativeLinear ? outweighsItsInputs(slice) : undefined,
    nativeGradients: tuned?.nativeGradients,
    nativeUpdate,
  });
}
