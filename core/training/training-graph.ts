/**
 * The training step as one ONNX graph: forward (training form) → loss → backward → optimizer update.
 *
 *   inputs:  input [N,1,28,28], labels int64 [N], lr [], step [] (Adam only), every parameter, buffer and
 *            optimizer-state tensor, and any per-step random inputs (dropout masks)
 *   outputs: loss [], correct [], and `<name>.next` for every carried tensor
 *
 * The caller feeds each `<name>.next` back as `<name>` on the next step.
 */
import { GraphBuilder } from '../../onnx/builder.ts';
import type { ModelProto } from '../../onnx/schema.ts';
import { int64Tensor } from '../../onnx/tensor.ts';
import { backward } from '../autodiff/backward.ts';
import { isNative } from '../autodiff/native-ops.ts';
import type { GradientRule } from '../autodiff/rule.ts';
import type { ConvGeometry } from '../autodiff/rules/conv-weight-gradient.ts';
import {
  type ExternalWeight,
  externalConvWeightRule,
  externalLinearWeightRule,
  externalWeightGradName,
} from '../autodiff/rules/external-weight.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import { type NativeChoices, nativeRules, nativeSum } from '../autodiff/rules/native.ts';
import { BATCH_DIM, emitForward, INPUT_NAME } from '../model/forward-graph.ts';
import type { Module, ParamSpec } from '../model/layers/index.ts';
import type { RandomInputSpec } from '../model/layers/module.ts';
import { softmaxCrossEntropy } from './loss.ts';
import { convsAsNchwc } from './nchwc-convs.ts';
import { fuseNchwcConvs } from './nchwc-fusion.ts';
import type { Optimizer } from './optim/index.ts';
import { type SegmentPlan, splitAtNativeNodes } from './segments.ts';

export const LABELS_NAME = 'labels';
export const LR_NAME = 'lr';
export const STEP_NAME = 'step';
export const LOSS_NAME = 'loss';
export const CORRECT_NAME = 'correct';
export const nextName = (name: string) => `${name}.next`;

/** A tensor that goes in and comes back updated each step. */
export interface CarriedTensor {
  name: string;
  shape: number[];
  kind: 'param' | 'buffer' | 'optimizer';
  /** Initial value for optimizer state (always zero) — params and buffers come from the weights. */
}

export interface TrainingGraph {
  model: ModelProto;
  params: ParamSpec[];
  carried: CarriedTensor[];
  randomInputs: RandomInputSpec[];
  usesStep: boolean;
  /** Number of classes (the logits' width). */
  classes: number;
  /** The logits value inside the graph (for evaluating the forward part alone). */
  logits: string;
  /** The parameter gradients' value names (graph outputs only when `exposeGradients` was set). */
  gradients: Map<string, string>;
}

export interface TrainingGraphOptions {
  optimizer: Optimizer;
  labelSmoothing?: number;
  /** Per-example input shape (default MNIST's 1×28×28). */
  inputShape?: number[];
  /** Also output `<param>.grad` for every trainable parameter (tests, debugging). */
  exposeGradients?: boolean;
  /** The op-type → gradient rule table (default ours; the autotuner passes one with chosen formulations). */
  rules?: Record<string, GradientRule>;
  /** The loss's log-softmax from Sub/ReduceMax/Exp/ReduceSum/Log, not LogSoftmax (WebGPU has none). */
  plainLogSoftmax?: boolean;
  /**
   * ORT's NCHWc block size on this CPU (node/nchwc.ts): the forward Convs then run as ORT's NCHWc
   * convolutions with the weights reordered in the graph (nchwc-convs.ts). onnxruntime-node's CPU only.
   */
  nchwcBlock?: number;
}

export const gradName = (name: string) => `${name}.grad`;
/** Part j of a gradient that comes in parts (see `buildUpdateGraph`'s `sources`). */
export const gradPartName = (name: string, part: number) => `${name}.grad.${part}`;
export const SHARES_NAME = 'shares';
export const stateName = (param: string, slot: string) => `${param}.${slot}`;

/** Forward (training form), loss and backward: what the whole step and the gradient-only graph share. */
function emitLossAndGradients(
  module: Module,
  options: Omit<TrainingGraphOptions, 'optimizer'> &
    Pick<GradientGraphOptions, 'externalConvWeights' | 'externalLinearWeights' | 'nativeGradients'>,
) {
  const forward = emitForward(module, {
    training: true,
    graphName: `${module.type}_train_step`,
    inputShape: options.inputShape,
  });
  const classes = forward.ctx.graph.shapeOf(forward.logits)[1] as number;
  const g: GraphBuilder = forward.graph;
  const labels = g.input(LABELS_NAME, 'INT64', [BATCH_DIM]);
  const { loss, correct, dLogits } = softmaxCrossEntropy(g, forward.logits, labels, {
    classes,
    labelSmoothing: options.labelSmoothing ?? 0,
    plainLogSoftmax: options.plainLogSoftmax,
  });
  const trainable = forward.params.filter((p) => p.trainable);
  const external: ExternalWeight[] = [];
  let rules = options.rules;
  const wrap = (op: 'Conv' | 'Gemm', wrapper: (rule: GradientRule) => GradientRule) => {
    const table = rules ?? gradientRules;
    const rule = table[op];
    if (!rule) throw new Error(`internal: the rule table has no ${op} rule`);
    rules = { ...table, [op]: wrapper(rule) };
  };
  const { nativeGradients, externalConvWeights, externalLinearWeights } = options;
  // A weight read by one node only: a shared one (a layer applied twice) sums its parts in the graph, and
  // the sum cannot read a gradient made outside it.
  const readers = new Map<string, number>();
  for (const node of g.nodes) for (const i of new Set(node.input)) readers.set(i, (readers.get(i) ?? 0) + 1);
  const ownWeights = new Set(trainable.map((p) => p.name).filter((name) => readers.get(name) === 1));
  if (nativeGradients) rules = nativeRules(rules ?? gradientRules, nativeGradients);
  if (externalConvWeights)
    wrap('Conv', (conv) => externalConvWeightRule(conv, ownWeights, externalConvWeights, external));
  if (externalLinearWeights)
    wrap('Gemm', (gemm) => externalLinearWeightRule(gemm, ownWeights, externalLinearWeights, external));
  const grads = backward(
    g,
    new Map([[forward.logits, dLogits]]),
    trainable.map((p) => p.name),
    { rules, keep: () => external.map((e) => e.dY), sum: nativeGradients ? nativeSum : undefined },
  );
  // With native gradients the graph is cut into segments anyway: the weights' reorders go native too.
  const weights = new Set(trainable.map((p) => p.name));
  if (options.nchwcBlock && convsAsNchwc(g, options.nchwcBlock, weights, !!nativeGradients) > 0) {
    // Values that become graph outputs below: the fusions keep their names.
    const later = [loss, correct, ...grads.values(), ...forward.ctx.stateUpdates.values()];
    fuseNchwcConvs(g, new Set([...later, ...external.flatMap((e) => [e.x, e.dY])]));
  }
  // A placeholder that feeds a node would leave that node unfed (the rules take unshared weights only).
  const placeholders = new Set(external.map((e) => externalWeightGradName(e.weight)));
  const consumer = g.nodes.find((node) => node.input.some((i) => placeholders.has(i)));
  if (consumer) throw new Error(`internal: external weight gradients: '${consumer.name}' would read a placeholder`);
  return { g, forward, ctx: forward.ctx, classes, loss, correct, trainable, grads, external };
}

/** Each buffer's training-time update as the output `<buffer>.next`. */
function outputBufferUpdates(g: GraphBuilder, forward: ReturnType<typeof emitForward>, carried: CarriedTensor[]): void {
  for (const p of forward.params.filter((q) => !q.trainable)) {
    const next = forward.ctx.stateUpdates.get(p.name);
    if (!next) throw new Error(`buffer ${p.name} has no training-time update`);
    carried.push({ name: p.name, shape: p.shape, kind: 'buffer' });
    g.output(next, 'FLOAT', p.shape, nextName(p.name));
  }
}

export function buildTrainingGraph(module: Module, options: TrainingGraphOptions): TrainingGraph {
  const { g, forward, ctx, classes, loss, correct, trainable, grads } = emitLossAndGradients(module, options);
  const lr = g.input(LR_NAME, 'FLOAT', []);
  const usesStep = options.optimizer.usesStep;
  const step = usesStep ? g.input(STEP_NAME, 'FLOAT', []) : '';

  const carried: CarriedTensor[] = [];
  const update = options.optimizer.emit(g, lr, step);
  for (const p of trainable) {
    const state = Object.fromEntries(
      options.optimizer.slots.map((slot) => [slot, g.input(stateName(p.name, slot), 'FLOAT', p.shape)]),
    );
    const next = update({ param: p.name, grad: grads.get(p.name) as string, state });
    carried.push({ name: p.name, shape: p.shape, kind: 'param' });
    g.output(next.param, 'FLOAT', p.shape, nextName(p.name));
    for (const slot of options.optimizer.slots) {
      const name = stateName(p.name, slot);
      carried.push({ name, shape: p.shape, kind: 'optimizer' });
      g.output(next.state[slot] as string, 'FLOAT', p.shape, nextName(name));
    }
  }
  outputBufferUpdates(g, forward, carried);
  g.output(loss, 'FLOAT', [], LOSS_NAME);
  g.output(correct, 'FLOAT', [], CORRECT_NAME);
  if (options.exposeGradients) {
    for (const p of trainable) g.output(grads.get(p.name) as string, 'FLOAT', p.shape, gradName(p.name));
  }
  return {
    model: g.toModel({ docString: `training step of ${module.type} with ${options.optimizer.name}` }),
    params: forward.params,
    carried,
    randomInputs: ctx.randomInputs,
    usesStep,
    logits: forward.logits,
    classes,
    gradients: grads,
  };
}

/**
 * The step's first half, for data-parallel workers: forward, loss and backward, no optimizer.
 *
 *   inputs:  input, labels, every parameter and buffer, the random inputs
 *   outputs: loss [] (mean over the batch), correct [], `<param>.grad` for every trainable parameter and
 *            `<buffer>.next` for every buffer (BatchNorm's running statistics, from this batch alone)
 */
export interface GradientGraph {
  model: ModelProto;
  params: ParamSpec[];
  /** Every trainable parameter; those in `external` get no `<param>.grad` output. */
  trainable: ParamSpec[];
  buffers: CarriedTensor[];
  randomInputs: RandomInputSpec[];
  classes: number;
  /** Weights whose gradient the caller computes from the outputs `externalInputName` and `externalOutputGradName`. */
  external: ExternalWeightOutputs[];
  /** How to run it when it has native nodes (`model` then holds them and ORT cannot run it whole). */
  segments?: SegmentPlan;
}

/**
 * An external weight gradient's inputs as the gradient graph hands them out: the record of
 * core/autodiff/rules/external-weight.ts with `x` the output holding X, or `INPUT_NAME` when X is the batch
 * of images itself (or a Flatten of it: the same floats), which the caller has; `dY` the output holding dY.
 */
export type ExternalWeightOutputs = ExternalWeight;

/** Outputs of the gradient graph for a weight whose gradient is computed outside it. */
export const externalInputName = (weight: string) => `${weight}.op_input`;
export const externalOutputGradName = (weight: string) => `${weight}.op_output_grad`;

export interface GradientGraphOptions extends Omit<TrainingGraphOptions, 'optimizer' | 'exposeGradients'> {
  /** Conv nodes (by geometry) whose weight gradient the caller computes outside the graph (see `external`). */
  externalConvWeights?: (geometry: ConvGeometry) => boolean;
  /** nn.Linear layers (by size) whose weight gradient the caller computes outside the graph (see `external`). */
  externalLinearWeights?: (inFeatures: number, outFeatures: number) => boolean;
  /**
   * Where chains of native gradient steps start (Conv input gradients, max-pool routings) and run on
   * through ReLU, max-pool, bias and sum steps (core/autodiff/rules/native.ts; see `segments`).
   */
  nativeGradients?: NativeChoices;
}

export function buildGradientGraph(module: Module, options: GradientGraphOptions = {}): GradientGraph {
  const { g, forward, ctx, classes, loss, correct, trainable, grads, external } = emitLossAndGradients(module, options);
  const outputs: ExternalWeightOutputs[] = [];
  for (const e of external) {
    const [xShape, dYShape] =
      e.kind === 'conv' ? [e.geometry.input, e.geometry.output] : [[e.inFeatures], [e.outFeatures]];
    const x = isTheImages(g, e.x)
      ? INPUT_NAME
      : g.output(e.x, 'FLOAT', [BATCH_DIM, ...xShape], externalInputName(e.weight));
    const dY = g.output(e.dY, 'FLOAT', [BATCH_DIM, ...dYShape], externalOutputGradName(e.weight));
    outputs.push({ ...e, x, dY });
  }
  const externalWeights = new Set(external.map((e) => e.weight));
  for (const p of trainable) {
    if (!externalWeights.has(p.name)) g.output(grads.get(p.name) as string, 'FLOAT', p.shape, gradName(p.name));
  }
  const buffers: CarriedTensor[] = [];
  outputBufferUpdates(g, forward, buffers);
  g.output(loss, 'FLOAT', [], LOSS_NAME);
  g.output(correct, 'FLOAT', [], CORRECT_NAME);
  const model = g.toModel({ docString: `gradients of ${module.type}` });
  return {
    model,
    params: forward.params,
    trainable,
    buffers,
    randomInputs: ctx.randomInputs,
    classes,
    external: outputs,
    segments: g.nodes.some(isNative) ? splitAtNativeNodes(model, g.shapes) : undefined,
  };
}

/** Whether `value` holds the images' floats as they are: the input, or a Flatten of it (a linear model's X). */
function isTheImages(g: GraphBuilder, value: string): boolean {
  if (value === INPUT_NAME) return true;
  const producer = g.nodes.find((node) => node.output.includes(value));
  const axis = producer?.attribute?.find((a) => a.name === 'axis')?.i ?? 1;
  return producer?.op_type === 'Flatten' && producer.input[0] === INPUT_NAME && Number(axis) === 1;
}

/**
 * The step's second half: one optimizer update from given gradients.
 *
 *   inputs:  lr [], step [] (when the optimizer counts steps), every trainable parameter, its
 *            `<param>.grad` and its optimizer state
 *   outputs: `<name>.next` for every parameter and state tensor (listed in `carried`)
 */
export interface UpdateGraph {
  model: ModelProto;
  carried: CarriedTensor[];
  usesStep: boolean;
}

export function buildUpdateGraph(
  trainable: readonly ParamSpec[],
  optimizer: Optimizer,
  /**
   * With `sources` > 1 the gradient comes in parts, `<param>.grad.<j>` for j < sources, and the graph
   * uses their weighted sum Σ shares[j] · part j (the `shares` input): data-parallel participants' slices.
   */
  { sources = 1 }: { sources?: number } = {},
): UpdateGraph {
  const g = new GraphBuilder(`${optimizer.name}_update`);
  const lr = g.input(LR_NAME, 'FLOAT', []);
  const usesStep = optimizer.usesStep;
  const step = usesStep ? g.input(STEP_NAME, 'FLOAT', []) : '';
  const update = optimizer.emit(g, lr, step);
  const sharesInput = sources > 1 ? g.input(SHARES_NAME, 'FLOAT', [sources]) : '';
  const shares = Array.from({ length: sources > 1 ? sources : 0 }, (_, j) =>
    g.op('Gather', [sharesInput, g.constant(int64Tensor([], [j]), 'source')]),
  );
  const gradientOf = (p: ParamSpec) =>
    sources > 1
      ? g.op(
          'Sum',
          shares.map((share, j) => g.op('Mul', [g.input(gradPartName(p.name, j), 'FLOAT', p.shape), share])),
        )
      : g.input(gradName(p.name), 'FLOAT', p.shape);
  const carried: CarriedTensor[] = [];
  for (const p of trainable) {
    const param = g.input(p.name, 'FLOAT', p.shape);
    const grad = gradientOf(p);
    const state = Object.fromEntries(
      optimizer.slots.map((slot) => [slot, g.input(stateName(p.name, slot), 'FLOAT', p.shape)]),
    );
    const next = update({ param, grad, state });
    carried.push({ name: p.name, shape: p.shape, kind: 'param' });
    g.output(next.param, 'FLOAT', p.shape, nextName(p.name));
    for (const slot of optimizer.slots) {
      const name = stateName(p.name, slot);
      carried.push({ name, shape: p.shape, kind: 'optimizer' });
      g.output(next.state[slot] as string, 'FLOAT', p.shape, nextName(name));
    }
  }
  return { model: g.toModel({ docString: `${optimizer.name} update` }), carried, usesStep };
}
