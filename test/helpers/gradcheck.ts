/**
 * Gradient checks: our float32 gradients (run in onnxruntime-node) against central finite differences
 * of the float64 reference evaluator's loss — for a whole module's training graph (`gradientCheck`),
 * or for one op's rule on a small hand-built graph (`opGradientCheck`).
 */
import * as ort from 'onnxruntime-node';
import { backward } from '../../core/autodiff/backward.ts';
import type { GradientRule, RuleContext } from '../../core/autodiff/rule.ts';
import { gradientRules } from '../../core/autodiff/rules/index.ts';
import { initializeWeights, type Weights } from '../../core/model/initialize.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { Rng } from '../../core/random.ts';
import { sgd } from '../../core/training/optim/index.ts';
import { buildTrainingGraph, gradName, type TrainingGraphOptions } from '../../core/training/training-graph.ts';
import { GraphBuilder } from '../../onnx/builder.ts';
import { encodeModel } from '../../onnx/codec.ts';
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
  /** Largest relative error |ours − finite difference| / scale over the checked elements and directions. */
  maxRelativeError: number;
  checked: number;
  /** Largest float32 noise σ of our gradient over the checks (spread at float32 neighbours), relative as above. */
  noiseFloor: number;
  /** Largest finite-difference uncertainty over the checks, relative as above. */
  fdUncertainty: number;
  /** Largest error over the checks in units of that check's own σ + finite-difference uncertainty (+ one roundoff). */
  maxNoiseRatio: number;
}

const EPS = 1e-6;
/** How many float32 neighbours of the point estimate the gradient's float32 noise. */
const NEIGHBOURS = 8;

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
 * `uncertainty` is |coarse − fine|: for a smooth f the step's truncation error (∝ EPS², so the
 * coarse estimate's error is 100/99 of it); across a kink, what the step size changes.
 */
function finiteDifference(f: (eps: number) => number): { value: number; uncertainty: number } {
  const at = (eps: number) => (f(eps) - f(-eps)) / (2 * eps);
  const coarse = at(EPS);
  const fine = at(EPS / 10);
  const uncertainty = Math.abs(coarse - fine);
  return { value: uncertainty > 1e-4 * Math.max(Math.abs(fine), 1e-8) ? fine : coarse, uncertainty };
}

interface TensorCheck {
  name: string;
  /** Our gradient of the loss with respect to this tensor. */
  grad: Float32Array;
  /** The same gradient at float32 neighbours of the point (see `float32Neighbour`); their spread is float32 noise. */
  neighbours: Float32Array[];
  /** The float64 reference loss with `delta` added to this tensor. */
  lossAt: (delta: Float64Array) => number;
  /** The largest gradient element over every checked tensor: tensors whose true gradient is 0 compare to it. */
  overallScale: number;
  /** Check every element of tensors up to this size; sample this many elements of larger ones. */
  elements: number;
  directions: number;
  rng: Rng;
}

/** float32's unit roundoff. */
const UNIT_ROUNDOFF = 2 ** -24;

/** One tensor's gradient, element by element and along random directions, against finite differences. */
function checkTensor(c: TensorCheck): ParamReport {
  const { grad, lossAt, overallScale, rng } = c;
  const n = grad.length;
  const report: ParamReport = {
    name: c.name,
    maxRelativeError: 0,
    checked: 0,
    noiseFloor: 0,
    fdUncertainty: 0,
    maxNoiseRatio: 0,
  };
  /** Fold one check in: our value and its values at the neighbours, the FD estimate, the error's denominator. */
  const record = (
    ours: number,
    atNeighbours: number[],
    fd: { value: number; uncertainty: number },
    denominator: number,
  ) => {
    // Two independent noisy values differ by √2 σ.
    const sigma = Math.sqrt(atNeighbours.reduce((s, v) => s + (v - ours) ** 2, 0) / (2 * atNeighbours.length));
    const error = Math.abs(ours - fd.value);
    report.maxRelativeError = Math.max(report.maxRelativeError, error / denominator);
    report.noiseFloor = Math.max(report.noiseFloor, sigma / denominator);
    report.fdUncertainty = Math.max(report.fdUncertainty, fd.uncertainty / denominator);
    const allowance = sigma + fd.uncertainty + UNIT_ROUNDOFF * denominator;
    report.maxNoiseRatio = Math.max(report.maxNoiseRatio, error / allowance);
    report.checked++;
  };
  // Errors are relative, with a floor: a tensor whose true gradient is 0 (a conv bias before BatchNorm)
  // comes out as float32 noise, to be compared against the overall gradient size.
  const scale = Math.max(maxAbs(grad), 1e-4 * overallScale);
  const indices =
    n <= c.elements ? Array.from({ length: n }, (_, i) => i) : Array.from({ length: c.elements }, () => rng.int(n));
  for (const i of indices) {
    const fd = finiteDifference((eps) => {
      const delta = new Float64Array(n);
      delta[i] = eps;
      return lossAt(delta);
    });
    const ours = grad[i] as number;
    // Relative, with a floor so that elements whose true gradient is ~0 compare absolutely.
    const denominator = Math.max(Math.abs(ours), Math.abs(fd.value), 1e-3 * scale);
    record(
      ours,
      c.neighbours.map((g) => g[i] as number),
      fd,
      denominator,
    );
  }
  for (let k = 0; k < c.directions; k++) {
    const v = Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
    const norm = norm2(v);
    const fd = finiteDifference((eps) => lossAt(v.map((x) => (x * eps) / norm)));
    const along = (g: Float32Array) => g.reduce((s, x, i) => s + x * (v[i] as number), 0) / norm;
    // Scale by ‖g‖: a directional derivative can cancel to ~0 even when g is large.
    record(along(grad), c.neighbours.map(along), fd, Math.max(norm2(grad), 1e-4 * overallScale));
  }
  return report;
}

/**
 * A float32 neighbour of `values`: each element scaled by 1 ± 2⁻²³ at random, one or two ulps. To
 * float32's resolution it is the same point, while every rounding in the graph falls anew: gradients
 * there scatter by the float32 noise of the computation.
 */
function float32Neighbour(values: Float32Array, rng: Rng): Float32Array {
  return values.map((v) => v * (1 + (rng.next() < 0.5 ? -2 : 2) * UNIT_ROUNDOFF));
}

/** Check every trainable parameter's gradient in `module`'s training graph (SGD, softmax cross-entropy). */
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
  // Rounded to float32, so the reference judges at the very point onnxruntime computes at.
  const input = (
    options.makeInput
      ? options.makeInput(rng, inputLength)
      : Float64Array.from({ length: inputLength }, () => rng.next())
  ).map(Math.fround);
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
  const trainable = train.params.filter((q) => q.trainable);
  const noiseRng = new Rng((options.seed ?? 7) + 1); // its own stream: the checked elements stay those of `rng`
  const neighbours: ort.InferenceSession.OnnxValueMapType[] = [];
  for (let k = 0; k < NEIGHBOURS; k++) {
    const moved = { ...feeds };
    for (const p of trainable) {
      moved[p.name] = new ort.Tensor(
        'float32',
        float32Neighbour(feeds[p.name]?.data as Float32Array, noiseRng),
        p.shape,
      );
    }
    neighbours.push(await session.run(moved));
  }
  await session.release();

  // The reference loss in float64 at the same point.
  const f64 = (t: ort.Tensor): F64 => ({ shape: [...t.dims], data: new Float64Array(t.data as Float32Array) });
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

  const gradOf = (name: string, result = out) => result[gradName(name)]?.data as Float32Array;
  const overallScale = Math.max(...trainable.map((p) => maxAbs(gradOf(p.name))));
  return trainable.map((p) =>
    checkTensor({
      name: p.name,
      grad: gradOf(p.name),
      neighbours: neighbours.map((result) => gradOf(p.name, result)),
      lossAt: (delta) => loss(p.name, delta),
      overallScale,
      elements: options.elementsPerTensor ?? 64,
      directions: options.directions ?? 1,
      rng,
    }),
  );
}

/** One op's gradient check: a small graph, every element of every differentiated input checked. */
export interface OpCase {
  /** Differentiated inputs: name → shape. */
  inputs: Record<string, number[]>;
  /** Inputs fed but not differentiated (e.g. BatchNorm's running statistics). */
  constants?: Record<string, number[]>;
  /** Emit the op under test on the inputs (by name); return its output and that output's shape. */
  build: (g: GraphBuilder) => { output: string; shape: number[] };
  /** An input's values (before rounding to float32); default uniform [-1, 1). */
  values?: (name: string, rng: Rng, length: number) => Float64Array | undefined;
}

export interface OpCheckReport {
  tensors: ParamReport[];
  /** The op types whose gradient rules ran while differentiating the case's graph. */
  rulesRun: Set<string>;
}

/** The rule table, each rule also noting its op type in `ran` when called. */
function recordingRules(rules: Record<string, GradientRule>, ran: Set<string>): Record<string, GradientRule> {
  return Object.fromEntries(
    Object.entries(rules).map(([op, rule]) => [
      op,
      Object.assign(
        (c: RuleContext) => {
          ran.add(op);
          return rule(c);
        },
        { broadcasts: rule.broadcasts },
      ),
    ]),
  );
}

/**
 * Differentiate L = Σ R ⊙ Y, Y the case's output and R a fixed random tensor (so dY = R is no special
 * value), with `backward` and the rule table (ours, or e.g. one with another Conv formulation); run it
 * in onnxruntime-node and compare every element's gradient with finite differences of the same L in
 * float64.
 */
export async function opGradientCheck(
  opCase: OpCase,
  { seed = 11, rules = gradientRules }: { seed?: number; rules?: Record<string, GradientRule> } = {},
): Promise<OpCheckReport> {
  const rng = new Rng(seed);
  const g = new GraphBuilder('op_check');
  const feeds = new Map<string, F64>();
  const declare = (name: string, shape: number[]) => {
    g.input(name, 'FLOAT', shape);
    const length = shape.reduce((a, b) => a * b, 1);
    const values = opCase.values?.(name, rng, length) ?? Float64Array.from({ length }, () => rng.uniform(-1, 1));
    feeds.set(name, { shape, data: values.map(Math.fround) }); // the point float32 can represent
  };
  for (const [name, shape] of Object.entries({ ...opCase.inputs, ...opCase.constants })) declare(name, shape);
  const { output, shape } = opCase.build(g);
  g.shapes.set(output, shape);
  const weights = g.input('output_weights', 'FLOAT', shape);
  const r = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => Math.fround(rng.uniform(-1, 1)));

  const rulesRun = new Set<string>();
  const wrt = Object.keys(opCase.inputs);
  const grads = backward(g, new Map([[output, weights]]), wrt, { rules: recordingRules(rules, rulesRun) });
  const outputName = g.output(output, 'FLOAT', shape, 'output_value');
  for (const name of wrt) g.output(grads.get(name) as string, 'FLOAT', opCase.inputs[name] as number[], gradName(name));
  const model = g.toModel();

  const session = await ort.InferenceSession.create(encodeModel(model), { intraOpNumThreads: 1 });
  const ortFeeds: Record<string, ort.Tensor> = { [weights]: new ort.Tensor('float32', Float32Array.from(r), shape) };
  for (const [name, v] of feeds) ortFeeds[name] = new ort.Tensor('float32', Float32Array.from(v.data), v.shape);
  const out = await session.run(ortFeeds);
  const noiseRng = new Rng(seed + 1);
  const neighbours: ort.InferenceSession.OnnxValueMapType[] = [];
  for (let k = 0; k < NEIGHBOURS; k++) {
    const moved = { ...ortFeeds };
    // The output weights too: a linear op's gradient depends on them alone.
    for (const name of [...wrt, weights]) {
      const t = ortFeeds[name] as ort.Tensor;
      moved[name] = new ort.Tensor('float32', float32Neighbour(t.data as Float32Array, noiseRng), t.dims);
    }
    neighbours.push(await session.run(moved));
  }
  await session.release();

  const weightedSum = (y: F64) => y.data.reduce((s, v, i) => s + v * (r[i] as number), 0);
  const reference = evaluate(model, feeds, outputName);
  const ortOutput = out.output_value?.data as Float32Array;
  const forwardError = maxAbs(reference.data.map((v, i) => v - (ortOutput[i] as number)));
  if (forwardError > 1e-5 * Math.max(1, maxAbs(reference.data))) {
    throw new Error(`forward mismatch: onnxruntime differs from the reference by ${forwardError}`);
  }
  const lossAt = (name: string) => (delta: Float64Array) => {
    const p = feeds.get(name) as F64;
    const moved = new Map(feeds).set(name, { shape: p.shape, data: p.data.map((v, i) => v + (delta[i] as number)) });
    return weightedSum(evaluate(model, moved, outputName));
  };
  const gradOf = (name: string, result = out) => result[gradName(name)]?.data as Float32Array;
  const overallScale = Math.max(...wrt.map((name) => maxAbs(gradOf(name))));
  const tensors = wrt.map((name) =>
    checkTensor({
      name,
      grad: gradOf(name),
      neighbours: neighbours.map((result) => gradOf(name, result)),
      lossAt: lossAt(name),
      overallScale,
      elements: Number.POSITIVE_INFINITY,
      directions: 1,
      rng,
    }),
  );
  return { tensors, rulesRun };
}
