/**
 * The training step as one ONNX graph: forward (training form) → loss → backward → optimizer update.
 *
 *   inputs:  input [N,1,28,28], labels int64 [N], lr [], step [] (Adam only), every parameter, buffer and
 *            optimizer-state tensor, and any per-step random inputs (dropout masks)
 *   outputs: loss [], correct [], and `<name>.next` for every carried tensor
 *
 * The caller feeds each `<name>.next` back as `<name>` on the next step.
 */
import type { GraphBuilder } from '../export/onnx/builder.ts';
import type { ModelProto } from '../export/onnx/schema.ts';
import { backward } from './autodiff/backward.ts';
import { BATCH_DIM, emitForward } from './forward-graph.ts';
import type { Module, ParamSpec } from './layers/index.ts';
import type { RandomInputSpec } from './layers/module.ts';
import { softmaxCrossEntropy } from './loss.ts';
import type { Optimizer } from './optim/index.ts';

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
}

export const gradName = (name: string) => `${name}.grad`;
export const stateName = (param: string, slot: string) => `${param}.${slot}`;

export function buildTrainingGraph(module: Module, options: TrainingGraphOptions): TrainingGraph {
  const forward = emitForward(module, {
    training: true,
    graphName: `${module.type}_train_step`,
    inputShape: options.inputShape,
  });
  const classes = forward.ctx.graph.shapeOf(forward.logits)[1] as number;
  const g: GraphBuilder = forward.graph;
  const ctx = forward.ctx;
  const labels = g.input(LABELS_NAME, 'INT64', [BATCH_DIM]);
  const lr = g.input(LR_NAME, 'FLOAT', []);
  const usesStep = options.optimizer.usesStep;
  const step = usesStep ? g.input(STEP_NAME, 'FLOAT', []) : '';

  const { loss, correct, dLogits } = softmaxCrossEntropy(g, forward.logits, labels, {
    classes,
    labelSmoothing: options.labelSmoothing ?? 0,
  });
  const trainable = forward.params.filter((p) => p.trainable);
  const grads = backward(
    g,
    new Map([[forward.logits, dLogits]]),
    trainable.map((p) => p.name),
  );

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
  for (const p of forward.params.filter((q) => !q.trainable)) {
    const next = ctx.stateUpdates.get(p.name);
    if (!next) throw new Error(`buffer ${p.name} has no training-time update`);
    carried.push({ name: p.name, shape: p.shape, kind: 'buffer' });
    g.output(next, 'FLOAT', p.shape, nextName(p.name));
  }
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
