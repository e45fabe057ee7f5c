/**
 * Gradient checks: our training graph's float32 gradients (run in onnxruntime-node) against central
 * finite differences of the float64 reference evaluator's loss.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../export/onnx/codec.ts';
import { initializeWeights, type Weights } from '../../train/initialize.ts';
import type { Module } from '../../train/layers/index.ts';
import { sgd } from '../../train/optim/index.ts';
import { Rng } from '../../train/random.ts';
import { buildTrainingGraph, gradName, type TrainingGraphOptions } from '../../train/training-graph.ts';
import { crossEntropy, evaluate, type F64 } from './reference.ts';

export interface GradCheckOptions {
  /** Per-example input shape. */
  inputShape: number[];
  batch: number;
  seed?: number;
  labelSmoothing?: number;
  /** Check every element of tensors up to this size; sample this many elements of larger ones. */
  elementsPerTensor?: number;
  /** Random directions per tensor for directional-derivative checks. */
  directions?: number;
  /** Start from these weights instead of a seeded initialization. */
  weights?: Weights;
  /** The gradient rule table to check (default ours). */
  rules?: TrainingGraphOptions['rules'];
  /** Make the input: defaults to uniform [0, 1). */
  makeInput?: (rng: Rng, length: number) => Float64Array;
}

export interface ParamReport {
  name: string;
  /** Largest relative error over the checked elements and directions. */
  maxRelativeError: number;
  checked: number;
}

const EPS = 1e-6;

// Loops, not Math.max(...xs): spreading a 400k-element tensor overflows the stack.
const maxAbs = (xs: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < xs.length; i++) m = Math.max(m, Math.abs(xs[i] as number));
  return m;
};
const norm2 = (xs: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < xs.length; i++) s += (xs[i] as number) ** 2;
  return Math.sqrt(s);
};

/**
 * Central difference of f at 0. ReLU and max-pool make the loss piecewise smooth; when a kink lies
 * within ±EPS the estimates at EPS and EPS/10 disagree, and the smaller step is the one to trust.
 */
function finiteDifference(f: (eps: number) => number): number {
  const at = (eps: number) => (f(eps) - f(-eps)) / (2 * eps);
  const coarse = at(EPS);
  const fine = at(EPS / 10);
  return Math.abs(coarse - fine) > 1e-4 * Math.max(Math.abs(fine), 1e-8) ? fine : coarse;
}

/** Relative error with a floor, so elements whose true gradient is ~0 compare absolutely. */
function relativeError(ours: number, reference: number, floor: number): number {
  return Math.abs(ours - reference) / Math.max(Math.abs(ours), Math.abs(reference), floor);
}

export async function gradientCheck(module: Module, options: GradCheckOptions): Promise<ParamReport[]> {
  const { inputShape, batch } = options;
  const rng = new Rng(options.seed ?? 7);
  const train = buildTrainingGraph(module, {
    optimizer: sgd(),
    inputShape,
    labelSmoothing: options.labelSmoothing,
    exposeGradients: true,
    rules: options.rules,
  });
  const weights = options.weights ?? initializeWeights(train.params, options.seed ?? 7);
  // Non-trivial BatchNorm affine parameters, so their gradients are exercised away from 1 and 0.
  for (const p of train.params) {
    if (p.init.kind === 'constant' && p.trainable && !options.weights) {
      const w = weights.get(p.name) as Float32Array;
      for (let i = 0; i < w.length; i++) w[i] = (p.init.value || 0.1) + rng.uniform(-0.5, 0.5);
    }
  }
  const inputLength = batch * inputShape.reduce((a, b) => a * b, 1);
  const input = options.makeInput
    ? options.makeInput(rng, inputLength)
    : Float64Array.from({ length: inputLength }, () => rng.next());
  const labels = Array.from({ length: batch }, (_, i) => (i * 3 + 1) % train.classes);

  // Our gradients.
  const session = await ort.InferenceSession.create(encodeModel(train.model), { intraOpNumThreads: 1 });
  const feeds: Record<string, ort.Tensor> = {
    input: new ort.Tensor('float32', Float32Array.from(input), [batch, ...inputShape]),
    labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [batch]),
    lr: new ort.Tensor('float32', Float32Array.of(0), []),
  };
  for (const c of train.carried) {
    feeds[c.name] = new ort.Tensor(
      'float32',
      weights.get(c.name) ?? new Float32Array(c.shape.reduce((a, b) => a * b, 1)),
      c.shape,
    );
  }
  for (const r of train.randomInputs) {
    const mask = new Float32Array(batch * r.shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < mask.length; i++) mask[i] = rng.next() < r.dropProbability ? 0 : 1 / (1 - r.dropProbability);
    feeds[r.name] = new ort.Tensor('float32', mask, [batch, ...r.shape]);
  }
  const out = await session.run(feeds);
  await session.release();

  // The reference loss in float64 at the same point.
  const f64 = (t: ort.Tensor): F64 => ({ shape: [...t.dims], data: Float64Array.from(t.data as Float32Array, Number) });
  const base = new Map<string, F64>(
    Object.entries(feeds)
      .filter(([k]) => k !== 'labels')
      .map(([k, t]) => [k, f64(t)]),
  );
  base.set('input', { shape: [batch, ...inputShape], data: input });
  const baseValues = new Map<string, F64>();
  const refLoss = crossEntropy(
    evaluate(train.model, base, train.logits, { cache: baseValues }),
    labels,
    options.labelSmoothing,
  );
  const loss = (name: string, delta: Float64Array): number => {
    const p = base.get(name) as F64;
    const feedsNow = new Map(base);
    feedsNow.set(name, { shape: p.shape, data: p.data.map((v, i) => v + (delta[i] as number)) });
    const logits = evaluate(train.model, feedsNow, train.logits, { reuse: baseValues, changed: name });
    return crossEntropy(logits, labels, options.labelSmoothing);
  };
  const ortLoss = (out.loss as ort.Tensor).data[0] as number;
  if (Math.abs(refLoss - ortLoss) > 1e-4 * Math.max(1, Math.abs(refLoss))) {
    throw new Error(`forward mismatch: reference loss ${refLoss}, onnxruntime ${ortLoss}`);
  }

  const trainable = train.params.filter((q) => q.trainable);
  const gradOf = (name: string) => out[gradName(name)]?.data as Float32Array;
  // Errors are relative, with a floor: a tensor whose true gradient is 0 (a conv bias before BatchNorm)
  // comes out as float32 noise, to be compared against the model's overall gradient size.
  const modelScale = Math.max(...trainable.map((p) => maxAbs(gradOf(p.name))));
  const reports: ParamReport[] = [];
  for (const p of trainable) {
    const grad = gradOf(p.name);
    const n = grad.length;
    const scale = Math.max(maxAbs(grad), 1e-4 * modelScale);
    let worst = 0;
    let checked = 0;
    const limit = options.elementsPerTensor ?? 64;
    const indices =
      n <= limit ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: limit }, () => rng.int(n));
    for (const i of indices) {
      const fd = finiteDifference((eps) => {
        const delta = new Float64Array(n);
        delta[i] = eps;
        return loss(p.name, delta);
      });
      worst = Math.max(worst, relativeError(grad[i] as number, fd, 1e-3 * scale));
      checked++;
    }
    for (let k = 0; k < (options.directions ?? 1); k++) {
      const v = Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
      const norm = norm2(v);
      const fd = finiteDifference((eps) =>
        loss(
          p.name,
          v.map((x) => (x * eps) / norm),
        ),
      );
      const ours = grad.reduce((s, g, i) => s + g * (v[i] as number), 0) / norm;
      const gradNorm = norm2(grad);
      // Scale by ‖g‖: a directional derivative can cancel to ~0 even when g is large.
      worst = Math.max(worst, Math.abs(ours - fd) / Math.max(gradNorm, 1e-4 * modelScale));
      checked++;
    }
    reports.push({ name: p.name, maxRelativeError: worst, checked });
  }
  return reports;
}
