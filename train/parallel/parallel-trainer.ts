/**
 * Data-parallel training on the CPU: N worker threads, each with its own 1-thread ORT session of the
 * gradient graph, each take a slice of the batch; the main thread sums their gradients weighted by slice
 * size (the loss is a mean, so the batch's gradient is Σ nᵢ/n · gᵢ) and runs ONE optimizer update (the
 * update graph). Same public surface as `Trainer`.
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

import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../export/onnx/codec.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../../runtime/contract.ts';
import { createSession, nodeRuntime, type Provider } from '../../runtime/execution.ts';
import { evaluateWeights } from '../evaluate.ts';
import { initializeWeights, type Weights } from '../initialize.ts';
import { toLabels } from '../labels.ts';
import type { Module } from '../layers/index.ts';
import { Rng } from '../random.ts';
import type { EvaluationResult, StepResult, TrainerOptions, TrainerState } from '../trainer.ts';
import {
  buildGradientGraph,
  buildUpdateGraph,
  type CarriedTensor,
  CORRECT_NAME,
  type GradientGraph,
  gradName,
  LABELS_NAME,
  LOSS_NAME,
  LR_NAME,
  nextName,
  STEP_NAME,
  type TrainingGraphOptions,
  type UpdateGraph,
} from '../training-graph.ts';
import type { WireFeeds } from './wire.ts';
import { WorkerSession } from './worker-session.ts';

export interface ParallelTrainerOptions extends TrainerOptions {
  /** Worker threads, each with its own 1-thread session. */
  workers: number;
  /** The most images one session run takes: bigger slices run in pieces whose gradients are accumulated. */
  microBatch?: number;
  /** The gradient rule table (default ours; the autotuner's has per-shape formulations). */
  rules?: TrainingGraphOptions['rules'];
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

export class ParallelTrainer {
  readonly provider: Provider = 'cpu';
  private stepCount = 0;

  private constructor(
    readonly module: Module,
    readonly gradient: GradientGraph,
    readonly update: UpdateGraph,
    private readonly workers: WorkerSession[],
    private readonly updater: ort.InferenceSession,
    /** Parameters, buffers and optimizer state by name. */
    private tensors: Map<string, Float32Array>,
    private readonly rng: Rng,
    private readonly options: ParallelTrainerOptions,
  ) {}

  static async create(module: Module, options: ParallelTrainerOptions): Promise<ParallelTrainer> {
    if (!Number.isInteger(options.workers) || options.workers < 1)
      throw new Error(`workers must be a positive integer, got ${options.workers}`);
    if (options.microBatch !== undefined && (!Number.isInteger(options.microBatch) || options.microBatch < 1))
      throw new Error(`microBatch must be a positive integer, got ${options.microBatch}`);
    if (options.device && options.device !== 'cpu') throw new Error('data-parallel workers run on the CPU only');
    const gradient = buildGradientGraph(module, { labelSmoothing: options.labelSmoothing, rules: options.rules });
    const update = buildUpdateGraph(gradient.trainable, options.optimizer);
    const weights = options.weights ?? initializeWeights(gradient.params, options.seed ?? 0);
    const tensors = new Map<string, Float32Array>();
    for (const c of [...update.carried, ...gradient.buffers]) {
      const data = c.kind === 'optimizer' ? new Float32Array(size(c.shape)) : weights.get(c.name);
      if (!data) throw new Error(`no initial value for ${c.name}`);
      tensors.set(c.name, Float32Array.from(data));
    }
    const bytes = encodeModel(gradient.model);
    const workers: WorkerSession[] = [];
    try {
      for (let i = 0; i < options.workers; i++)
        workers.push(await WorkerSession.start(bytes, { device: 'cpu', threads: 1 }));
      const { session } = await createSession(encodeModel(update.model), { device: 'cpu', threads: 1 });
      const rng = new Rng((options.seed ?? 0) ^ 0x9e3779b9);
      return new ParallelTrainer(module, gradient, update, workers, session, tensors, rng, options);
    } catch (error) {
      await Promise.all(workers.map((w) => w.release()));
      throw error;
    }
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.stepCount;
  }

  private get carried(): CarriedTensor[] {
    return [...this.update.carried, ...this.gradient.buffers];
  }

  /** One optimizer step on a batch, as `Trainer.step`. */
  async step(images: Float32Array, labels: ArrayLike<number>, lr: number): Promise<StepResult> {
    const n = labels.length;
    if (n === 0) throw new Error('a training batch needs at least one image');
    if (images.length !== n * IMAGE_PIXELS)
      throw new Error(`batch has ${n} labels but ${images.length / IMAGE_PIXELS} images`);
    const labels64 = toLabels(labels, this.gradient.classes);
    const masks = this.gradient.randomInputs.map((r) => {
      const mask = new Float32Array(n * size(r.shape));
      const keep = 1 / (1 - r.dropProbability);
      for (let i = 0; i < mask.length; i++) mask[i] = this.rng.next() < r.dropProbability ? 0 : keep;
      return mask;
    });

    const shared: WireFeeds = {};
    for (const p of this.gradient.params) {
      shared[p.name] = { type: 'float32', data: this.tensors.get(p.name) as Float32Array, dims: p.shape };
    }
    const slices = sliceBatch(n, this.workers.length, this.options.microBatch);
    const results = await Promise.all(
      this.workers.map(async (worker, w) => {
        const outputs: { count: number; outputs: WireFeeds }[] = [];
        for (let s = w; s < slices.length; s += this.workers.length) {
          const [start, end] = slices[s] as [number, number];
          const feeds: WireFeeds = {
            ...shared,
            [INPUT_NAME]: {
              type: 'float32',
              data: images.slice(start * IMAGE_PIXELS, end * IMAGE_PIXELS),
              dims: [end - start, ...IMAGE_SHAPE],
            },
            [LABELS_NAME]: { type: 'int64', data: labels64.slice(start, end), dims: [end - start] },
          };
          this.gradient.randomInputs.forEach((r, i) => {
            const per = size(r.shape);
            const data = (masks[i] as Float32Array).slice(start * per, end * per);
            feeds[r.name] = { type: 'float32', data, dims: [end - start, ...r.shape] };
          });
          outputs.push({ count: end - start, outputs: await worker.run(feeds) });
        }
        return outputs;
      }),
    );

    // Σ nᵢ/n · (each slice's mean-loss gradient, buffer update, loss).
    const sums = new Map<string, Float64Array>();
    const summed = [
      ...this.gradient.trainable.map((p) => ({ name: gradName(p.name), shape: p.shape })),
      ...this.gradient.buffers.map((b) => ({ name: nextName(b.name), shape: b.shape })),
    ];
    for (const s of summed) sums.set(s.name, new Float64Array(size(s.shape)));
    let loss = 0;
    let correct = 0;
    for (const { count, outputs } of results.flat()) {
      const weight = count / n;
      for (const s of summed) {
        const acc = sums.get(s.name) as Float64Array;
        const data = floats(outputs, s.name);
        for (let i = 0; i < acc.length; i++) acc[i] = (acc[i] as number) + weight * (data[i] as number);
      }
      loss += weight * (floats(outputs, LOSS_NAME)[0] as number);
      correct += floats(outputs, CORRECT_NAME)[0] as number;
    }

    const feeds: Record<string, ort.Tensor> = { [LR_NAME]: new ort.Tensor('float32', Float32Array.of(lr), []) };
    if (this.update.usesStep) feeds[STEP_NAME] = new ort.Tensor('float32', Float32Array.of(this.stepCount + 1), []);
    for (const c of this.update.carried)
      feeds[c.name] = new ort.Tensor('float32', this.tensors.get(c.name) as Float32Array, c.shape);
    for (const p of this.gradient.trainable) {
      const g = gradName(p.name);
      feeds[g] = new ort.Tensor('float32', Float32Array.from(sums.get(g) as Float64Array), p.shape);
    }
    const out = await this.updater.run(feeds);
    const next = new Map<string, Float32Array>();
    for (const c of this.update.carried)
      next.set(c.name, Float32Array.from((out[nextName(c.name)] as ort.Tensor).data as Float32Array));
    for (const b of this.gradient.buffers)
      next.set(b.name, Float32Array.from(sums.get(nextName(b.name)) as Float64Array));
    this.tensors = next;
    this.stepCount++;
    return { loss, correct };
  }

  /** Current parameters and buffers by name (copies). */
  weights(): Weights {
    const weights: Weights = new Map();
    for (const p of this.gradient.params) weights.set(p.name, Float32Array.from(this.tensors.get(p.name) ?? []));
    return weights;
  }

  /** Accuracy and mean loss on a dataset, with an inference session. */
  evaluate(images: Float32Array, labels: ArrayLike<number>, batchSize = 1000): Promise<EvaluationResult> {
    return evaluateWeights(
      nodeRuntime,
      this.module,
      this.weights(),
      { ...this.options, device: 'cpu' },
      images,
      labels,
      batchSize,
    );
  }

  /** A snapshot for checkpoints (the same tensors and names as `Trainer.state`). */
  state(): TrainerState {
    const tensors = new Map<string, Float32Array>();
    for (const c of this.carried) tensors.set(c.name, Float32Array.from(this.tensors.get(c.name) ?? []));
    return { tensors, stepCount: this.stepCount, rngState: this.rng.getState() };
  }

  /** Continue from a snapshot taken by `state()` (of this or a `Trainer` of the same model and optimizer). */
  restore(state: TrainerState): void {
    const next = new Map<string, Float32Array>();
    for (const c of this.carried) {
      const data = state.tensors.get(c.name);
      const expected = size(c.shape);
      if (!data || data.length !== expected) {
        throw new Error(
          `checkpoint does not match the model: ${c.name} ${data ? `has ${data.length} values, expected ${expected}` : 'is missing'}`,
        );
      }
      next.set(c.name, Float32Array.from(data));
    }
    this.tensors = next;
    this.stepCount = state.stepCount;
    this.rng.setState(state.rngState);
  }

  async release(): Promise<void> {
    await Promise.all([...this.workers.map((w) => w.release()), this.updater.release()]);
  }
}

/**
 * [start, end) slices of a batch of n: at least one per worker (fewer when n is smaller), more when
 * `microBatch` asks for smaller pieces; sizes differ by at most one.
 */
export function sliceBatch(n: number, workers: number, microBatch = n): [number, number][] {
  const count = Math.min(n, Math.max(workers, Math.ceil(n / microBatch)));
  const slices: [number, number][] = [];
  for (let i = 0, start = 0; i < count; i++) {
    const end = start + Math.floor(n / count) + (i < n % count ? 1 : 0);
    slices.push([start, end]);
    start = end;
  }
  return slices;
}

function floats(outputs: WireFeeds, name: string): Float32Array {
  const t = outputs[name];
  if (t?.type !== 'float32') throw new Error(`internal: the gradient graph returned no ${name}`);
  return t.data as Float32Array;
}
