/**
 * Emit a module's forward pass as an ONNX graph: input `input` float [N,1,28,28], output `logits` [N,10].
 */

import { GraphBuilder } from '../../onnx/builder.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import { IMAGE_SHAPE, INPUT_NAME, LOGITS_NAME, NUM_CLASSES } from '../contract.ts';
import { type LayerRow, ModelContext, type Module, type ParamSpec, type Value } from './layers/index.ts';
import { BATCH_DIM, type ParamPlacement } from './layers/module.ts';

/** MNIST images, one channel. */
export { BATCH_DIM, IMAGE_SHAPE, INPUT_NAME, LOGITS_NAME, NUM_CLASSES };

export interface ForwardGraph {
  graph: GraphBuilder;
  ctx: ModelContext;
  /** Name of the (internal) logits value, before any renaming to an output. */
  logits: string;
  params: ParamSpec[];
  rows: LayerRow[];
  /** Multiply-accumulates per image in Conv and Linear layers. */
  macs: number;
}

export interface ForwardOptions {
  placement?: ParamPlacement;
  training?: boolean;
  graphName?: string;
  /** Per-example input shape; MNIST's 1×28×28 (and then exactly 10 logits) unless given. */
  inputShape?: number[];
}

export interface EmittedModule {
  graph: GraphBuilder;
  ctx: ModelContext;
  output: Value;
}

/** Emit any module on an input `input` [N, ...inputShape] — a single layer in a test, or a whole model. */
export function emitModule(module: Module, inputShape: readonly number[], options: ForwardOptions = {}): EmittedModule {
  const graph = new GraphBuilder(options.graphName ?? module.type);
  const x = graph.input(INPUT_NAME, 'FLOAT', [BATCH_DIM, ...inputShape]);
  const ctx = new ModelContext(graph, options.placement, options.training);
  return { graph, ctx, output: ctx.call('', module, ctx.value(x, [...inputShape])) };
}

/** Emit a classifier's forward pass (MNIST images → 10 logits unless `inputShape` says otherwise). */
export function emitForward(module: Module, options: ForwardOptions = {}): ForwardGraph {
  const { graph, ctx, output } = emitModule(module, options.inputShape ?? IMAGE_SHAPE, options);
  const ok = options.inputShape ? output.shape.length === 1 : output.shape.join() === String(NUM_CLASSES);
  if (!ok) {
    const expected = options.inputShape ? 'a vector of logits' : `${NUM_CLASSES} logits`;
    throw new Error(`model must end in ${expected}, it ends in shape [${output.shape.join(', ')}]`);
  }
  // The root call's row is the whole model; the summary lists its parts.
  return { graph, ctx, logits: output.name, params: ctx.params, rows: ctx.rows.slice(1), macs: ctx.macs };
}

/** Parameters, summary rows and MACs of a module, without keeping its graph. */
export function inspectModule(module: Module): Pick<ForwardGraph, 'params' | 'rows' | 'macs'> {
  const { params, rows, macs } = emitForward(module);
  return { params, rows, macs };
}

export function countParams(params: readonly ParamSpec[]): number {
  return params.filter((p) => p.trainable).reduce((n, p) => n + sizeOf(p.shape), 0);
}
