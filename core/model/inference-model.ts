/**
 * An inference ONNX model of a zoo module: weights as initializers, `input` float [N,1,28,28] (dynamic N),
 * `logits` [N,10]. Deployable models (normalization folded in, probabilities, metadata) are export/'s job;
 * this is the plain forward graph that loads in onnxruntime.
 */
import type { ModelProto } from '../../onnx/schema.ts';
import { BATCH_DIM, emitForward, inspectModule, LOGITS_NAME, NUM_CLASSES } from './forward-graph.ts';
import { initializeWeights, type Weights } from './initialize.ts';
import type { Module } from './layers/index.ts';

export interface InferenceModelOptions {
  /** Trained weights by parameter name; fresh PyTorch-style initialization from `seed` when absent. */
  weights?: Weights;
  seed?: number;
  metadata?: Record<string, string>;
}

export function inferenceModel(
  module: Module,
  options: InferenceModelOptions = {},
): { model: ModelProto; weights: Weights } {
  const weights = options.weights ?? initializeWeights(inspectModule(module).params, options.seed ?? 0);
  const forward = emitForward(module, { placement: { as: 'initializers', values: weights } });
  forward.graph.output(forward.logits, 'FLOAT', [BATCH_DIM, NUM_CLASSES], LOGITS_NAME);
  return { model: forward.graph.toModel({ metadata: options.metadata }), weights };
}
