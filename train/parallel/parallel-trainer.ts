/**
 * Data-parallel training on the CPU: N participants — the main thread and N-1 worker threads, each with
 * its own 1-thread ORT session of the gradient graph — each take a slice of the batch; the slices'
 * gradients, weighted by slice size (the loss is a mean, so the batch's gradient is Σ nᵢ/n · gᵢ), are
 * summed in shared memory and each participant runs the optimizer update for its shard of the parameters
 * (slice-runner.ts). Nothing serial runs between the two halves of a step, and no thread sits idle
 * contending for a core. Same public surface as `Trainer`. With N = 1 it is the native step without
 * workers: one gradient session (of `sessionThreads`), then the native kernels (create-trainer.ts).
 *
 * For BatchNorm models the statistics are per slice, like PyTorch's DDP without SyncBN: each slice is
 * normalized by its own mean and variance, and the running statistics become the slice-weighted mean of
 * the slices' updates (the running mean is then exactly the full batch's; the running variance is the mean
 * of the slices' variances). BN-free models step exactly as one session does, up to float rounding.
 * Dropout masks are drawn for the whole batch in the same order as `Trainer`, then sliced.
 *
 * @example
 * const trainer = await ParallelTrainer.create(ZOO.cnn.build(), { optimizer: sgd({ momentum: 0.5 }), workers: 2 });
 */

import type { NativeChoices } from '../../core/autodiff/rules/native.ts';
import { IMAGE_PIXELS } from '../../core/contract.ts';
import { initializeWeights, type Weights } from '../../core/model/initialize.ts';
import type { Module, ParamSpec } from '../../core/model/layers/index.ts';
import type { NodeProvider as Provider } from '../../core/ort-runtime.ts';
import { dropoutMask, Rng } from '../../core/random.ts';
import { evaluateWeights } from '../../core/training/evaluate.ts';
import { toLabels } from '../../core/training/labels.ts';
import {
  buildGradientGraph,
  buildUpdateGraph,
  type CarriedTensor,
  type GradientGraph,
  gradName,
  nextName,
  stateName,
  type TrainingGraphOptions,
} from '../../core/training/training-graph.ts';
import { nodeRuntime } from '../../node/execution.ts';
import { nativeKernels } from '../../node/native-kernels.ts';
import { nchwcBlockSize } from '../../node/nchwc.ts';
import { encodeSegmentPlan } from '../../node/segmented-session.ts';
import { encodeModel } from '../../onnx/codec.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import type { EvaluationResult, StepResult, NodeTrainerOptions as TrainerOptions, TrainerState } from '../trainer.ts';
import { SpeedEstimate, shares } from './balance.ts';
import { abortWaiters, allocateShared, clearError, SharedInputs, SharedState, sharedLayout } from './shared-state.ts';
import { FLAT_PARAMETERS, type RunnerData, SliceRunner, type StepReply } from './slice-runner.ts';
import { WorkerHandle } from './worker-handle.ts';

export interface ParallelTrainerOptions extends TrainerOptions {
  /** Threads taking part, the main thread included, each with its own session. */
  workers: number;
  /**
   * Threads of each participant's gradient step (default 1): its sessions' intra-op threads and its native
   * kernels'. One participant with N threads is one session's step with the native kernels around it.
   */
  sessionThreads?: number;
  /** The most images one session run takes: bigger slices run in pieces whose gradients are accumulated. */
  microBatch?: number;
  /** Told each participant's milliseconds of work on its slice after every step (bench/epoch-probe.ts). */
  onCompute?: (participant: number, ms: number) => void;
  /** The gradient rule table (default ours; the autotuner's has per-shape formulations). */
  rules?: TrainingGraphOptions['rules'];
  /**
   * Give faster workers bigger slices (balance.ts), for BatchNorm-free models (where the split changes
   * nothing but float rounding). Default false: equal slices, the same sums every run.
   */
  balance?: boolean;
  /** Compute every Conv weight gradient with the native kernel (node/native-kernels.ts) instead of in ORT. */
  nativeConvWeights?: boolean;
  /** nn.Linear layers (by size) whose weight gradient the addon's OpenBLAS kernel computes, when it has one. */
  nativeLinearWeights?: (inFeatures: number, outFeatures: number) => boolean;
  /** Where chains of native gradient steps start (core/autodiff/rules/native.ts); needs the addon. */
  nativeGradients?: NativeChoices;
  /**
   * Update each shard in place with the native optimizer kernel when the addon has it (default true);
   * false runs the update graph in a session (copies in and out of shared memory).
   */
  nativeUpdate?: boolean;
}

export class ParallelTrainer {
  readonly provider: Provider = 'cpu';
  private stepCount = 0;
  private readonly speeds: SpeedEstimate;
  private readonly inputs = new SharedInputs();

  private constructor(
    readonly module: Module,
    readonly gradient: GradientGraph,
    /** Every carried tensor: parameters, optimizer state, buffers (the checkpoint's names). */
    private readonly carried: CarriedTensor[],
    /** Participant 0, on this thread. */
    private readonly runner: SliceRunner,
    /** Participants 1…N-1. */
    private readonly workers: WorkerHandle[],
    private readonly shared: SharedState,
    private readonly rng: Rng,
    private readonly options: ParallelTrainerOptions,
  ) {
    this.speeds = new SpeedEstimate(workers.length + 1);
  }

  static async create(module: Module, options: ParallelTrainerOptions): Promise<ParallelTrainer> {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new Error(`workers must be a positive integer, got ${options.workers}`);
    if (options.microBatch !== undefined && (!Number.isInteger(options.microBatch) || options.microBatch < 1))
      throw new Error(`microBatch must be a positive integer, got ${options.microBatch}`);
    if (options.device && options.device !== 'cpu') throw new Error('data-parallel workers run on the CPU only');
    const nchwcBlock = options.nchwc === false ? undefined : await nchwcBlockSize();
    const gradient = buildGradientGraph(module, {
      nchwcBlock,
      labelSmoothing: options.labelSmoothing,
      rules: options.rules,
      externalConvWeights: options.nativeConvWeights ? () => true : undefined,
      externalLinearWeights: nativeKernels()?.linearWeightGradient ? options.nativeLinearWeights : undefined,
      nativeGradients: options.nativeGradients,
    });
    const { optimizer } = options;
    const carried: CarriedTensor[] = [...buildUpdateGraph(gradient.trainable, optimizer).carried, ...gradient.buffers];
    const layout = sharedLayout(
      gradient.trainable,
      optimizer.slots.map((slot) => (param: string) => stateName(param, slot)),
      gradient.buffers,
      [
        ...gradient.trainable.map((p) => ({ name: gradName(p.name), shape: p.shape })),
        ...gradient.buffers.map((b) => ({ name: nextName(b.name), shape: b.shape })),
      ],
      options.workers,
    );
    const buffers = allocateShared(layout);
    const shared = new SharedState(layout, buffers);
    const weights = options.weights ?? initializeWeights(gradient.params, options.seed ?? 0);
    for (const c of carried) {
      if (c.kind === 'optimizer') continue; // shared memory starts zeroed
      const data = weights.get(c.name);
      if (!data || data.length !== sizeOf(c.shape)) throw new Error(`no initial value for ${c.name}`);
      shared.carried(c.name).set(data);
    }
    const gradientModel = gradient.segments ? encodeSegmentPlan(gradient.segments) : encodeModel(gradient.model);
    const shards = shardRanges(layout.flatLength, options.workers);
    const nativeUpdate =
      options.nativeUpdate !== false && nativeKernels()?.optimizerUpdate ? optimizer.native : undefined;
    const flat: ParamSpec = {
      name: FLAT_PARAMETERS,
      shape: [0],
      init: { kind: 'constant', value: 0 },
      trainable: true,
    };
    const handles: WorkerHandle[] = [];
    let runner: SliceRunner | undefined;
    try {
      for (let index = 0; index < options.workers; index++) {
        const shard = shards[index] as { start: number; length: number };
        const sources = { sources: options.workers };
        const data: RunnerData = {
          index,
          gradientModel,
          sessionThreads: options.sessionThreads ?? 1,
          nativeUpdate,
          updateModel:
            shard.length && !nativeUpdate
              ? encodeModel(buildUpdateGraph([{ ...flat, shape: [shard.length] }], optimizer, sources).model)
              : undefined,
          shard,
          slots: optimizer.slots,
          usesStep: optimizer.usesStep,
          inputs: gradient.params.map((p) => ({ name: p.name, shape: p.shape })),
          buffers: gradient.buffers.map((b) => b.name),
          randomInputs: gradient.randomInputs.map((r) => ({ name: r.name, shape: r.shape })),
          external: gradient.external,
          layout,
          shared: buffers,
        };
        if (index === 0) runner = await SliceRunner.create(data);
        else handles.push(await WorkerHandle.start(data, () => abortWaiters(shared.control)));
      }
      const rng = new Rng((options.seed ?? 0) ^ 0x9e3779b9);
      return new ParallelTrainer(module, gradient, carried, runner as SliceRunner, handles, shared, rng, options);
    } catch (error) {
      await Promise.all([runner?.release(), ...handles.map((w) => w.release())]);
      throw error;
    }
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.stepCount;
  }

  /** One optimizer step on a batch, as `Trainer.step`. */
  async step(images: Float32Array, labels: ArrayLike<number>, lr: number): Promise<StepResult> {
    const n = labels.length;
    if (n === 0) throw new Error('a training batch needs at least one image');
    if (images.length !== n * IMAGE_PIXELS)
      throw new Error(`batch has ${n} labels but ${images.length / IMAGE_PIXELS} images`);
    const labels64 = toLabels(labels, this.gradient.classes);
    const masks = this.gradient.randomInputs.map((r) => dropoutMask(this.rng, r.dropProbability, n * sizeOf(r.shape)));
    const balanced = this.options.balance && this.gradient.buffers.length === 0;
    const counts = shares(n, balanced ? this.speeds.current : this.speeds.current.map(() => 1));
    const starts = counts.map((_, w) => counts.slice(0, w).reduce((a, b) => a + b, 0));
    const maskPieces = (start: number, end: number) =>
      this.gradient.randomInputs.map((r, i) => {
        const per = sizeOf(r.shape);
        return (masks[i] as Float32Array).slice(start * per, end * per);
      });
    const piecesOf = (w: number) =>
      microBatches(counts[w] as number, this.options.microBatch).map(([a, b]) => ({
        offset: a,
        count: b - a,
        weight: (b - a) / n,
        masks: maskPieces((starts[w] as number) + a, (starts[w] as number) + b),
      }));
    const common = { shares: counts.map((c) => c / n), lr, step: this.stepCount + 1 };

    clearError(this.shared.control);
    // The workers' images and labels go through shared memory (no per-step buffers to collect).
    const remoteStart = counts[0] as number;
    const fresh = this.inputs.fit(n);
    this.inputs.images.set(images.subarray(remoteStart * IMAGE_PIXELS), remoteStart * IMAGE_PIXELS);
    this.inputs.labels.set(labels64.subarray(remoteStart), remoteStart);
    // The workers' slices go out first; then this thread runs its own, on views of the caller's batch.
    try {
      for (const [i, worker] of this.workers.entries()) {
        worker.post({
          ...common,
          start: starts[i + 1] as number,
          count: counts[i + 1] as number,
          pieces: piecesOf(i + 1),
          inputs: fresh ? this.inputs.buffers : undefined,
        });
      }
    } catch (error) {
      abortWaiters(this.shared.control); // a worker is gone: the ones already sent must not wait for it
      throw error;
    }
    const own = await this.runner.step({
      ...common,
      pieces: piecesOf(0).map(({ offset, count, weight, masks }) => ({
        images: images.subarray(offset * IMAGE_PIXELS, (offset + count) * IMAGE_PIXELS),
        labels: labels64.subarray(offset, offset + count),
        masks,
        weight,
      })),
    });
    const remote = await Promise.allSettled(this.workers.map((worker) => worker.reply()));
    const replies = [own, ...remote.map((r) => (r.status === 'fulfilled' ? r.value : errorReply(r.reason)))];
    let loss = 0;
    let correct = 0;
    for (const [w, r] of replies.entries()) {
      if (r.kind === 'error') throw new Error(r.message);
      loss += r.loss;
      correct += r.correct;
      this.speeds.observe(w, counts[w] as number, r.computeMs);
      this.options.onCompute?.(w, r.computeMs);
    }
    this.stepCount++;
    return { loss, correct };
  }

  /** Current parameters and buffers by name (copies). */
  weights(): Weights {
    const weights: Weights = new Map();
    for (const p of this.gradient.params) weights.set(p.name, Float32Array.from(this.shared.carried(p.name)));
    return weights;
  }

  /** Accuracy and mean loss on a dataset (of `weights` when given), with an inference session on every thread the steps use. */
  evaluate(
    images: Float32Array,
    labels: ArrayLike<number>,
    batchSize = 1000,
    weights: Weights = this.weights(),
  ): Promise<EvaluationResult> {
    const threads = this.options.workers * (this.options.sessionThreads ?? 1);
    return evaluateWeights(
      nodeRuntime,
      this.module,
      weights,
      { ...this.options, device: 'cpu', threads },
      images,
      labels,
      batchSize,
    );
  }

  /** A snapshot for checkpoints (the same tensors and names as `Trainer.state`). */
  state(): TrainerState {
    const tensors = new Map<string, Float32Array>();
    for (const c of this.carried) tensors.set(c.name, Float32Array.from(this.shared.carried(c.name)));
    return { tensors, stepCount: this.stepCount, rngState: this.rng.getState() };
  }

  /** Continue from a snapshot taken by `state()` (of this or a `Trainer` of the same model and optimizer). */
  restore(state: TrainerState): void {
    for (const c of this.carried) {
      const data = state.tensors.get(c.name);
      const expected = sizeOf(c.shape);
      if (!data || data.length !== expected) {
        throw new Error(
          `checkpoint does not match the model: ${c.name} ${data ? `has ${data.length} values, expected ${expected}` : 'is missing'}`,
        );
      }
    }
    for (const c of this.carried) this.shared.carried(c.name).set(state.tensors.get(c.name) as Float32Array);
    this.stepCount = state.stepCount;
    this.rng.setState(state.rngState);
  }

  async release(): Promise<void> {
    await Promise.all([this.runner.release(), ...this.workers.map((w) => w.release())]);
  }
}

const errorReply = (reason: unknown): StepReply => ({ kind: 'error', message: (reason as Error).message });

/** [start, end) pieces of a worker's `count` images, none bigger than `microBatch`, sizes differing by at most one. */
export function microBatches(count: number, microBatch = count): [number, number][] {
  const pieces = Math.ceil(count / Math.max(1, microBatch));
  const out: [number, number][] = [];
  for (let i = 0, start = 0; i < pieces; i++) {
    const end = start + Math.floor(count / pieces) + (i < count % pieces ? 1 : 0);
    out.push([start, end]);
    start = end;
  }
  return out;
}

/** The flat parameters dealt to participants for their updates: contiguous ranges, sizes differing by at most one. */
export function shardRanges(total: number, participants: number): { start: number; length: number }[] {
  return Array.from({ length: participants }, (_, i) => {
    const start = i * Math.floor(total / participants) + Math.min(i, total % participants);
    return { start, length: Math.floor(total / participants) + (i < total % participants ? 1 : 0) };
  });
}
