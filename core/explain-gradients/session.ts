/**
 * A served model and its gradient model, ready to run on raw pixels (28×28 in [0, 1], as the pad and
 * MNIST give them), on whichever ONNX Runtime is injected: onnxruntime-web in the page's worker,
 * onnxruntime-node in the tests. A model exported from PyTorch takes normalized pixels; this converts
 * both ways, so gradients are always per raw pixel and ε is always in pixel units.
 */

import { encodeModel } from '../../onnx/codec.ts';
import { describeModel } from '../../onnx/describe.ts';
import type { ModelProto } from '../../onnx/schema.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD, NUM_CLASSES, normalizationFolded } from '../contract.ts';
import type { InferenceSession, OrtRuntime, SessionSettings } from '../ort-runtime.ts';
import type { MapDims } from './grad-cam.ts';
import { GRADIENT_NAMES, type GradientModel, gradientModel } from './gradient-model.ts';
import { probedShapes, shapeProbe } from './probe.ts';

/** What J is for each image (see gradient-model.ts): a class's score, or its log-probability. */
export interface Objective {
  /** The class whose score or log-probability J is. */
  target: number;
  /** 'score': the logit zₜ (saliency, Grad-CAM); 'log-probability': log p(t) (adversarial steps). */
  kind: 'score' | 'log-probability';
}

export interface GradientResult {
  /** [N, 10]. */
  logits: Float32Array;
  /** dJ/d(raw pixel) [N, 784]. */
  inputGradient: Float32Array;
  /** The last Conv's maps and dJ/d(maps), [N, K, h, w] each (absent for a model without Conv). */
  cam?: { maps: Float32Array; gradient: Float32Array; dims: MapDims };
}

const f32 = (value: unknown) => (value as { data: Float32Array }).data;

export class GradientSession {
  private constructor(
    private readonly runtime: OrtRuntime,
    private readonly forward: InferenceSession,
    private readonly gradient: InferenceSession,
    readonly graph: GradientModel,
    /** Whether the model takes raw pixels (its normalization folded in). */
    readonly folded: boolean,
    /** The most images one run takes (a torch export's static batch is 1). */
    readonly maxBatch: number,
  ) {}

  /** Probe the model's shapes, build its gradient model, open both sessions. */
  static async create(
    runtime: OrtRuntime,
    source: ModelProto,
    settings: SessionSettings = {},
  ): Promise<GradientSession> {
    const probe = shapeProbe(source);
    const probing = (await runtime.createSession(encodeModel(probe.model), settings)).session;
    let measured: Record<string, readonly number[]>;
    try {
      const { name, dims } = probe.input;
      const zeros = new Float32Array(sizeOf(dims));
      const out = await probing.run({ [name]: new runtime.Tensor('float32', zeros, dims) });
      measured = Object.fromEntries(probe.values.map((v) => [v, out[v]?.dims ?? []]));
    } finally {
      await probing.release();
    }
    const graph = gradientModel(source, probedShapes(probe, measured));
    const [forward, gradient] = await Promise.all([
      runtime.createSession(encodeModel(source), settings),
      runtime.createSession(encodeModel(graph.model), settings),
    ]);
    const folded = normalizationFolded(describeModel(source).metadata);
    const maxBatch = probe.dynamicBatch ? Number.POSITIVE_INFINITY : (probe.input.dims[0] as number);
    return new GradientSession(runtime, forward.session, gradient.session, graph, folded, maxBatch);
  }

  /** Raw pixels → what the model takes. */
  private modelInput(pixels: Float32Array): Float32Array {
    return this.folded ? pixels : pixels.map((v) => (v - MNIST_MEAN) / MNIST_STD);
  }

  private tensor(data: Float32Array, dims: number[]) {
    return new this.runtime.Tensor('float32', data, dims);
  }

  /** The logits of N images (raw pixels, N×784), in runs of at most `maxBatch`. */
  async logits(pixels: Float32Array): Promise<Float32Array> {
    const n = pixels.length / IMAGE_PIXELS;
    const out = new Float32Array(n * NUM_CLASSES);
    const step = Math.min(n, this.maxBatch);
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const x = this.modelInput(pixels.subarray(start * IMAGE_PIXELS, (start + count) * IMAGE_PIXELS));
      const result = await this.forward.run({ [this.graph.input]: this.tensor(x, [count, 1, 28, 28]) });
      out.set(f32(result[this.graph.logits]), start * NUM_CLASSES);
    }
    return out;
  }

  /** J's gradients for one image per objective (N ≤ maxBatch). */
  async gradients(pixels: Float32Array, objectives: readonly Objective[]): Promise<GradientResult> {
    const n = objectives.length;
    if (pixels.length !== n * IMAGE_PIXELS) throw new Error(`${n} objectives need ${n} images`);
    if (n > this.maxBatch) throw new Error(`this model takes at most ${this.maxBatch} image(s) per run`);
    const weights = new Float32Array(n * NUM_CLASSES);
    const lambda = new Float32Array(n);
    objectives.forEach(({ target, kind }, i) => {
      weights[i * NUM_CLASSES + target] = 1;
      lambda[i] = kind === 'log-probability' ? 1 : 0;
    });
    const out = await this.gradient.run({
      [this.graph.input]: this.tensor(this.modelInput(pixels), [n, 1, 28, 28]),
      [GRADIENT_NAMES.classWeights]: this.tensor(weights, [n, NUM_CLASSES]),
      [GRADIENT_NAMES.logSumExpWeight]: this.tensor(lambda, [n, 1]),
    });
    const inputGradient = f32(out[GRADIENT_NAMES.inputGradient]);
    // d/d(raw) = d/d(normalized) / std when the model normalizes nothing itself.
    if (!this.folded)
      for (let i = 0; i < inputGradient.length; i++) inputGradient[i] = (inputGradient[i] as number) / MNIST_STD;
    const maps = out[GRADIENT_NAMES.camMaps];
    const [, k, h, w] = (maps?.dims ?? []) as number[];
    return {
      logits: f32(out[this.graph.logits]),
      inputGradient,
      ...(maps && {
        cam: {
          maps: f32(maps),
          gradient: f32(out[GRADIENT_NAMES.camGradient]),
          dims: [k as number, h as number, w as number] as const,
        },
      }),
    };
  }

  async release(): Promise<void> {
    await Promise.all([this.forward.release(), this.gradient.release()]);
  }
}
