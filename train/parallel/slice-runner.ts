/**
 * One participant of a data-parallel step — a worker thread, or the main thread itself (so N-way
 * parallelism needs N threads, not N + 1 contending for N cores). It owns an ORT session of the gradient
 * graph (1 thread; a lone participant may have more) and the update of its shard of the parameters: the
 * native optimizer kernel where the addon has it, else the shard's update graph. Per step it
 *
 *  1. reads the parameters and buffers from shared memory and runs its slice (in micro-batches if asked),
 *     writing the slice's gradients and buffer updates (means over the slice) to its own shared region;
 *  2. waits at the barrier for every participant's region (a reduce, in shared memory);
 *  3. updates its shard from every region's part of it — the weighted sum Σ shares[j] · part j, in the
 *     same order on every thread — in place in shared memory (the native kernel), or through the update
 *     graph with copies in and out (participant 0 also averages the buffers). A shard is a range of all
 *     trainable parameters laid end to end (shared-state.ts): every optimizer's update is elementwise, so
 *     one flat tensor per role updates any number of parameters at once.
 *
 * A lone participant (no workers) shares nothing: its memory is a plain ArrayBuffer that ORT reads in
 * place, and its update reads each gradient where ORT left it. Other copies between shared memory and ORT
 * are native `TypedArray.set`s into arrays allocated once.
 */

import * as ort from 'onnxruntime-node';
import { IMAGE_SHAPE, INPUT_NAME } from '../../core/contract.ts';
import type { NativeUpdate } from '../../core/training/optim/index.ts';
import {
  CORRECT_NAME,
  type ExternalWeightOutputs,
  gradName,
  gradPartName,
  LABELS_NAME,
  LOSS_NAME,
  LR_NAME,
  nextName,
  SHARES_NAME,
  STEP_NAME,
  stateName,
} from '../../core/training/training-graph.ts';
import { createSession } from '../../node/execution.ts';
import {
  type NativeKernels,
  nativeKernels,
  nativeKernelsStatus,
  type UpdateArguments,
} from '../../node/native-kernels.ts';
import { createGradientRunner, type EncodedSegmentPlan, type GradientRunner } from '../../node/segmented-session.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import {
  arriveAndWait,
  flagError,
  hasError,
  type SharedBuffers,
  type SharedLayout,
  SharedState,
} from './shared-state.ts';

/** What a participant is made from (structured-cloneable: it crosses to worker threads). */
export interface RunnerData {
  index: number;
  /** The gradient graph, or its segments when native nodes cut it (node/segmented-session.ts). */
  gradientModel: Uint8Array | EncodedSegmentPlan;
  /** Threads of the gradient step: its sessions' intra-op threads and the native kernels'. */
  sessionThreads: number;
  /** The update graph of this participant's shard (absent when the shard is empty or updated natively). */
  updateModel?: Uint8Array;
  /** The optimizer's update for the native kernel, run in place on the shared shard instead of a graph. */
  nativeUpdate?: NativeUpdate;
  /** Its shard: a range of the flat trainable parameters (and of their gradients and state). */
  shard: { start: number; length: number };
  /** The optimizer's state slots per parameter. */
  slots: readonly string[];
  usesStep: boolean;
  /** Parameters and buffers the gradient graph reads. */
  inputs: { name: string; shape: number[] }[];
  /** Buffers (participant 0 writes their batch value). */
  buffers: string[];
  /** Dropout masks' per-example shapes, by input name. */
  randomInputs: { name: string; shape: number[] }[];
  /** Weights whose gradient a native kernel computes from the graph's X and dY outputs. */
  external: ExternalWeightOutputs[];
  layout: SharedLayout;
  shared: SharedBuffers;
}

/** One piece of a slice: images, labels, masks, and its weight (its images / the batch's). */
export interface SlicePiece {
  images: Float32Array;
  labels: BigInt64Array;
  masks: Float32Array[];
  weight: number;
}

export interface StepRequest {
  pieces: SlicePiece[];
  /** Every participant's images / the batch's. */
  shares: number[];
  lr: number;
  step: number;
}

export type StepReply =
  | {
      kind: 'stepped';
      loss: number;
      correct: number;
      /** Reading the weights and running the slice: what the balancer measures speed by. */
      computeMs: number;
    }
  | { kind: 'error'; message: string };

/** The update graph's one "parameter": a shard of all trainable parameters end to end. */
export const FLAT_PARAMETERS = 'parameters';

/** A float tensor's data by name; a missing one is our bug. */
function floatsOf(tensors: Record<string, ort.Tensor | undefined>, name: string): Float32Array {
  const data = tensors[name]?.data;
  if (!(data instanceof Float32Array)) throw new Error(`internal: no float tensor ${name}`);
  return data;
}

/** The update graph's gradient inputs for a parameter (see `buildUpdateGraph`'s `sources`). */
const gradientParts = (param: string, parts: number) =>
  parts > 1 ? Array.from({ length: parts }, (_, j) => gradPartName(param, j)) : [gradName(param)];

export class SliceRunner {
  // ORT can't read SharedArrayBuffer-backed arrays: steps copy into these.
  private readonly gradientFeeds: Record<string, ort.Tensor>;
  private readonly updateFeeds: Record<string, ort.Tensor> = {};
  /** Shard tensors the update reads and writes back: [update input name, shared view of it]. */
  private readonly updated: [string, Float32Array][] = [];
  /** The native update's shared views: the shard's parameters, its optimizer state per slot, each region's gradient. */
  private readonly nativeShard?: { param: Float32Array; states: Float32Array[]; parts: Float32Array[] };
  /**
   * A lone participant's native update, parameter by parameter (by gradient name), so each reads its
   * gradient where ORT left it instead of from a copy in the region (`gradient` is set each run).
   */
  private readonly alone?: Map<string, { param: Float32Array; states: Float32Array[]; gradient: Float32Array }>;
  /** Gradients computed outside the graph, by their `<param>.grad` slot name. */
  private readonly external: Map<string, ExternalWeightOutputs>;
  /** Where a micro-batch's external gradient goes before it is added in. */
  private readonly scratch: Map<string, Float32Array>;
  private readonly kernels: NativeKernels | undefined;
  /** The optimizer's native update, bound to its description (absent when the update graph runs). */
  private readonly optimizerUpdate?: (...args: UpdateArguments) => void;
  /** The participants' shares as the native update reads them (refilled each step). */
  private readonly shareWeights: Float32Array;
  /** Whether the gradient feeds are views of the parameters themselves (no per-step copy). */
  private readonly readsInPlace: boolean;

  private constructor(
    private readonly data: RunnerData,
    private readonly shared: SharedState,
    private readonly gradient: GradientRunner,
    private readonly update: ort.InferenceSession | undefined,
  ) {
    this.external = new Map(data.external.map((e) => [gradName(e.weight), e]));
    this.kernels = data.external.length > 0 || data.nativeUpdate ? nativeKernels() : undefined;
    if ((data.external.length > 0 || data.nativeUpdate) && !this.kernels) throw new Error(nativeKernelsStatus());
    const { nativeUpdate } = data;
    const kernel = this.kernels?.optimizerUpdate;
    if (nativeUpdate && !kernel) throw new Error('internal: no native optimizer update');
    if (nativeUpdate && kernel) this.optimizerUpdate = (...args) => kernel(nativeUpdate, ...args);
    this.shareWeights = new Float32Array(data.layout.workers);
    this.scratch = new Map(
      data.layout.reduced.filter((s) => this.external.has(s.name)).map((s) => [s.name, new Float32Array(s.length)]),
    );
    const tensor = (shape: number[]) => new ort.Tensor('float32', new Float32Array(sizeOf(shape)), shape);
    // One participant's memory is not shared: its sessions read the parameters where they are.
    this.readsInPlace = !(data.shared.floats instanceof SharedArrayBuffer);
    this.gradientFeeds = Object.fromEntries(
      data.inputs.map((t) => [
        t.name,
        this.readsInPlace ? new ort.Tensor('float32', shared.carried(t.name), t.shape) : tensor(t.shape),
      ]),
    );
    const { start, length } = data.shard;
    if (data.nativeUpdate && data.layout.workers === 1) {
      const trainable = data.layout.carried.filter((slot) => slot.offset < data.layout.flatLength);
      this.alone = new Map(
        trainable.map((p) => [
          gradName(p.name),
          {
            param: shared.carried(p.name),
            states: data.slots.map((slot) => shared.carried(stateName(p.name, slot))),
            gradient: shared.reduced(0, gradName(p.name)),
          },
        ]),
      );
    } else if (length > 0 && data.nativeUpdate) {
      this.nativeShard = {
        param: shared.flat(0, start, length),
        states: data.slots.map((_, i) => shared.flat(i + 1, start, length)),
        parts: Array.from({ length: data.layout.workers }, (_, j) => shared.reduced(j).subarray(start, start + length)),
      };
    } else if (length > 0) {
      for (const part of gradientParts(FLAT_PARAMETERS, data.layout.workers)) this.updateFeeds[part] = tensor([length]);
      const roles: [string, number][] = [
        [FLAT_PARAMETERS, 0],
        ...data.slots.map((slot, i): [string, number] => [stateName(FLAT_PARAMETERS, slot), i + 1]),
      ];
      for (const [name, role] of roles) {
        this.updateFeeds[name] = tensor([length]);
        this.updated.push([name, shared.flat(role, start, length)]);
      }
    }
  }

  static async create(data: RunnerData): Promise<SliceRunner> {
    const gradient = await createGradientRunner(data.gradientModel, data.sessionThreads);
    try {
      const update = data.updateModel
        ? (await createSession(data.updateModel, { device: 'cpu', threads: 1 })).session
        : undefined;
      return new SliceRunner(data, new SharedState(data.layout, data.shared), gradient, update);
    } catch (error) {
      await gradient.release();
      throw error;
    }
  }

  /** One step's part; never throws (a failure anywhere leaves every shard un-updated and is reported). */
  async step(request: StepRequest): Promise<StepReply> {
    const start = performance.now();
    let result: { loss: number; correct: number } | undefined;
    let failure: string | undefined;
    try {
      result = await this.runSlice(request.pieces);
    } catch (error) {
      failure = (error as Error).message;
      flagError(this.shared.control);
    }
    const computeMs = performance.now() - start;
    try {
      await arriveAndWait(this.shared.control, this.data.layout.workers);
      if (failure !== undefined || !result) throw new Error(failure ?? 'internal: no slice result');
      if (hasError(this.shared.control)) throw new Error('another training worker failed this step');
      await this.updateShard(request.lr, request.step, request.shares);
      return { kind: 'stepped', ...result, computeMs };
    } catch (error) {
      return { kind: 'error', message: (error as Error).message };
    }
  }

  async release(): Promise<void> {
    await Promise.all([this.gradient.release(), this.update?.release()]);
  }

  private async runSlice(pieces: SlicePiece[]): Promise<{ loss: number; correct: number }> {
    const { data, shared } = this;
    const feeds = this.gradientFeeds;
    if (!this.readsInPlace) for (const t of data.inputs) floatsOf(feeds, t.name).set(shared.carried(t.name));
    const region = shared.reduced(data.index);
    const images = pieces.reduce((sum, p) => sum + p.labels.length, 0);
    let loss = 0;
    let correct = 0;
    for (const [k, piece] of pieces.entries()) {
      const n = piece.labels.length;
      feeds[INPUT_NAME] = new ort.Tensor('float32', piece.images, [n, ...IMAGE_SHAPE]);
      feeds[LABELS_NAME] = new ort.Tensor('int64', piece.labels, [n]);
      data.randomInputs.forEach((r, i) => {
        feeds[r.name] = new ort.Tensor('float32', piece.masks[i] as Float32Array, [n, ...r.shape]);
      });
      const out = await this.gradient.run(feeds);
      const floats = (name: string) => floatsOf(out, name);
      // The region holds the slice's mean: one piece is copied; micro-batches are averaged by size.
      for (const slot of data.layout.reduced) {
        const target = region.subarray(slot.offset, slot.offset + slot.length);
        const external = this.external.get(slot.name);
        if (external && pieces.length === 1) {
          this.externalGradient(external, piece.images, floats, n, target);
          continue;
        }
        const values = external
          ? this.externalGradient(external, piece.images, floats, n, this.scratch.get(slot.name) as Float32Array)
          : floats(slot.name);
        const alone = this.alone?.get(slot.name);
        if (alone) alone.gradient = pieces.length === 1 ? values : target;
        if (pieces.length === 1) {
          if (!alone) target.set(values);
        } else {
          const w = n / images;
          if (k === 0) for (let i = 0; i < target.length; i++) target[i] = w * (values[i] as number);
          else for (let i = 0; i < target.length; i++) target[i] = (target[i] as number) + w * (values[i] as number);
        }
      }
      loss += piece.weight * (floats(LOSS_NAME)[0] as number);
      correct += floats(CORRECT_NAME)[0] as number;
    }
    if (pieces.length === 0) region.fill(0);
    return { loss, correct };
  }

  /** A weight's gradient by a native kernel, from X (the images, or an output) and dY, into `into`. */
  private externalGradient(
    e: ExternalWeightOutputs,
    images: Float32Array,
    floats: (name: string) => Float32Array,
    n: number,
    into: Float32Array,
  ): Float32Array {
    const x = e.x === INPUT_NAME ? images : floats(e.x);
    const kernels = this.kernels as NativeKernels;
    const threads = this.data.sessionThreads;
    if (e.kind === 'conv') kernels.convWeightGradient(x, floats(e.dY), into, e.geometry, n, threads);
    else if (kernels.linearWeightGradient)
      kernels.linearWeightGradient(x, floats(e.dY), into, n, e.inFeatures, e.outFeatures, threads);
    else throw new Error('internal: a linear weight gradient left out of the graph without OpenBLAS');
    return into;
  }

  private async updateShard(lr: number, step: number, shares: number[]): Promise<void> {
    const { data, shared } = this;
    const update = this.optimizerUpdate;
    if (update && this.alone) {
      for (const { param, states, gradient } of this.alone.values()) update(lr, step, param, states, [gradient], null);
    } else if (update && this.nativeShard) {
      const { param, states, parts } = this.nativeShard;
      this.shareWeights.set(shares);
      update(lr, step, param, states, parts, shares.length > 1 ? this.shareWeights : null);
    } else if (this.update) {
      const feeds = this.updateFeeds;
      feeds[LR_NAME] = new ort.Tensor('float32', Float32Array.of(lr), []);
      if (data.usesStep) feeds[STEP_NAME] = new ort.Tensor('float32', Float32Array.of(step), []);
      if (shares.length > 1) feeds[SHARES_NAME] = new ort.Tensor('float32', Float32Array.from(shares), [shares.length]);
      const { start, length } = data.shard;
      gradientParts(FLAT_PARAMETERS, shares.length).forEach((part, j) => {
        floatsOf(feeds, part).set(shared.reduced(j).subarray(start, start + length));
      });
      for (const [name, view] of this.updated) floatsOf(feeds, name).set(view);
      const out = await this.update.run(feeds);
      for (const [name, view] of this.updated) view.set(floatsOf(out, nextName(name)));
    }
    if (data.index === 0) {
      for (const b of data.buffers) {
        const value = shared.carried(b).fill(0);
        shares.forEach((share, j) => {
          const part = shared.reduced(j, nextName(b));
          for (let i = 0; i < value.length; i++) value[i] = (value[i] as number) + share * (part[i] as number);
        });
      }
    }
  }
}
