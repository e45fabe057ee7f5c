/** Build a one-layer (or any module) ONNX model with given weights, for golden-number tests. */

import { BATCH_DIM, emitModule } from '../../core/model/forward-graph.ts';
import type { Module } from '../../core/model/layers/index.ts';
import type { ModelProto } from '../../onnx/schema.ts';

export function moduleModel(
  module: Module,
  inputShape: number[],
  weights: Record<string, number[]> = {},
): { model: ModelProto; outputShape: number[] } {
  const values = new Map(Object.entries(weights).map(([k, v]) => [k, Float32Array.from(v)]));
  const { graph, output } = emitModule(module, inputShape, { placement: { as: 'initializers', values } });
  graph.output(output.name, 'FLOAT', [BATCH_DIM, ...output.shape], 'output');
  return { model: graph.toModel(), outputShape: output.shape };
}
