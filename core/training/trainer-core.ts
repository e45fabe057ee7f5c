/**
 * The Trainer, free of Node APIs and of any particular ONNX Runtime package: the runtime (`Tensor`,
 * `createSession`) is injected, onnxruntime-node's by the CLI (train/trainer.ts) and onnxruntime-web's by
 * the browser's /train page. It builds the training-step graph once, keeps parameters, buffers and optimizer state as
 * ORT tensors, and feeds each step's `<name>.next` outputs straight back as the next step's inputs —
 * no per-step JS copies of the weights.
 *
 * @example
 * const trainer = await Trainer.create(ZOO.cnn.build(), { runtime, optimizer: sgd({ momentum: 0.5 }), seed: 0 });
 * const { loss, correct } = await trainer.step(images, labels, 0.01);
 * const { accuracy } = await trainer.evaluate(testImages, testLabels);
 */

import { encodeModel } from '../../onnx/codec.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../contract.ts';
import { initializeWeights, type Weights } from '../model/initialize.ts';
import type { Module } from '../model/layers/index.ts';
import type {
  InferenceSession,
  OrtRuntime,
  Provider,
  SessionSettings,
  Tensor,
  TensorConstructor,
} from '../ort-runtime.ts';
import { dropoutMask, Rng } from '../random.ts';
import { type EvaluationResult, evaluateWeights } from './evaluate.ts';
import { stepGraphFor } from './gpu-graph.ts';
import { toLabels } from './labels.ts';
import type { Optimizer } from './optim/index.ts';
import {
  buildTrainingGraph,
  CORRECT_NAME,
  LABELS_NAME,
  LOSS_NAME,
  LR_NAME,
  nextName,
  STEP_NAME,
  type TrainingGraph,
  type TrainingGraphOptions,
} from './training-graph.ts';

export interface TrainerOptions extends SessionSettings {
  /** The ONNX Runtime package to run on (onnxruntime-node or onnxruntime-web). */
  runtime: OrtRuntime;
  optimizer: Optimizer;
  labelSmoothing?: number;
  /** The gradient rule table (default ours; the autotuner's has per-shape formulations). */
  rules?: TrainingGraphOptions['rules'];
  /** Seeds the initial weights (when `weights` is absent) and the dropout masks. */
  seed?: number;
  /** Start from these weights (and buffers) instead of a fresh initialization. */
  weights?: Weights;
  /** ORT's NCHWc block size, for a CPU session of onnxruntime-node (see `TrainingGraphOptions`). */
  nchwcBlock?: number;
}

export interface StepResult {
  loss: number;
  correct: number;
}

export type { EvaluationResult };

/** Everything needed to continue training exactly: carried tensors, step count and RNG state. */
export interface TrainerState {
  tensors: Map<string, Float32Array>;
  stepCount: number;
  rngState: number;
}

export class Trainer {
  private stepCount = 0;

  protected constructor(
    readonly module: Module,
    readonly graph: TrainingGraph,
    private readonly session: InferenceSession,
    readonly provider: Provider,
    private carried: Record<string, Tensor>,
    private readonly rng: Rng,
    private readonly settings: SessionSettings,
    private readonly runtime: OrtRuntime,
  ) {}

  private get Tensor(): TensorConstructor {
    return this.runtime.Tensor;
  }

  static async create(module: Module, options: TrainerOptions): Promise<Trainer> {
    // GPU providers get a graph of ops they run (gpu-graph.ts).
    const forDevice = stepGraphFor(options.device);
    const graph = buildTrainingGraph(module, {
      optimizer: options.optimizer,
      labelSmoothing: options.labelSmoothing,
      rules: options.rules ?? forDevice.rules,
      plainLogSoftmax: forDevice.plainLogSoftmax,
      nchwcBlock: options.nchwcBlock,
    });
    if (graph.model.graph?.node) graph.model.graph.node = forDevice.finish(graph.model.graph.node);
    const weights = options.weights ?? initializeWeights(graph.params, options.seed ?? 0);
    const { runtime, nchwcBlock: _, ...sessionSettings } = options;
    const carried: Record<string, Tensor> = {};
    for (const c of graph.carried) {
      const data = c.kind === 'optimizer' ? new Float32Array(sizeOf(c.shape)) : weights.get(c.name);
      if (!data) throw new Error(`no initial value for ${c.name}`);
      carried[c.name] = new runtime.Tensor('float32', Float32Array.from(data), c.shape);
    }
    // The WebGPU provider can't produce MaxPool's Indices; such nodes (from rules a caller gave) stay on the CPU.
    const forceCpuNodeNames = (graph.model.graph?.node ?? [])
      .filter((n) => n.op_type === 'MaxPool' && n.output.length > 1)
      .map((n) => n.name as string);
    const settings = { ...sessionSettings, forceCpuNodeNames };
    const { session, provider } = await runtime.createSession(encodeModel(graph.model), settings);
    const rng = new Rng((options.seed ?? 0) ^ 0x9e3779b9);
    return new Trainer(module, graph, session, provider, carried, rng, settings, runtime);
  }

  /** Steps taken so far. */
  get steps(): number {
    return this.stepCount;
  }

  /**
   * One optimizer step on a batch: `images` is [n, 1, 28, 28] row-major (normalized), `labels` 0..9.
   * The learning rate is an input, so schedules cost nothing.
   */
  async step(images: Float32Array, labels: ArrayLike<number>, lr: number): Promise<StepResult> {
    const n = labels.length;
    if (n === 0) throw new Error('a training batch needs at least one image');
    if (images.length !== n * IMAGE_PIXELS) {
      throw new Error(`batch has ${labels.length} labels but ${images.length / IMAGE_PIXELS} images`);
    }
    const feeds: Record<string, Tensor> = {
      ...this.carried,
      [INPUT_NAME]: new this.Tensor('float32', images, [n, ...IMAGE_SHAPE]),
      [LABELS_NAME]: new this.Tensor('int64', toLabels(labels, this.graph.classes), [n]),
      [LR_NAME]: new this.Tensor('float32', Float32Array.of(lr), []),
    };
    if (this.graph.usesStep) feeds[STEP_NAME] = new this.Tensor('float32', Float32Array.of(this.stepCount + 1), []);
    for (const r of this.graph.randomInputs) {
      const mask = dropoutMask(this.rng, r.dropProbability, n * sizeOf(r.shape));
      feeds[r.name] = new this.Tensor('float32', mask, [n, ...r.shape]);
    }
    const out = await this.session.run(feeds);
    const next: Record<string, Tensor> = {};
    for (const c of this.graph.carried) next[c.name] = out[nextName(c.name)] as Tensor;
    this.carried = next;
    this.stepCount++;
    return { loss: scalarOf(out[LOSS_NAME]), correct: scalarOf(out[CORRECT_NAME]) };
  }

  /** Current parameters and buffers by name (copies). */
  weights(): Weights {
    const weights: Weights = new Map();
    for (const p of this.graph.params)
      weights.set(p.name, Float32Array.from(this.carried[p.name]?.data as Float32Array));
    return weights;
  }

  /**
   * Accuracy and mean loss on a dataset, with an inference session (BatchNorm/Dropout in inference form), of
   * the current weights or of `weights` given (an average of them, say).
   */
  evaluate(
    images: Float32Array,
    labels: ArrayLike<number>,
    batchSize = 1000,
    weights: Weights = this.weights(),
  ): Promise<EvaluationResult> {
    return evaluateWeights(this.runtime, this.module, weights, this.settings, images, labels, batchSize);
  }

  /** A snapshot for checkpoints. */
  state(): TrainerState {
    const tensors = new Map<string, Float32Array>();
    for (const c of this.graph.carried)
      tensors.set(c.name, Float32Array.from(this.carried[c.name]?.data as Float32Array));
    return { tensors, stepCount: this.stepCount, rngState: this.rng.getState() };
  }

  /** Continue from a snapshot taken by `state()` on a trainer of the same model and optimizer. */
  restore(state: TrainerState): void {
    const next: Record<string, Tensor> = {};
    for (const c of this.graph.carried) {
      const data = state.tensors.get(c.name);
      const expected = sizeOf(c.shape);
      if (!data || data.length !== expected) {
        throw new Error(
          `checkpoint does not match the model: ${c.name} ${data ? `has ${data.length} values, expected ${expected}` : 'is missing'}`,
        );
      }
      next[c.name] = new this.Tensor('float32', Float32Array.from(data), c.shape);
    }
    this.carried = next;
    this.stepCount = state.stepCount;
    this.rng.setState(state.rngState);
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

function scalarOf(tensor: Tensor | undefined): number {
  if (!tensor) throw new Error('internal: the training step returned no scalar');
  return (tensor.data as Float32Array)[0] as number;
}
