/**
 * Timing a MaxPool's gradient routings where they run: in the model's whole gradient graph, this pool's
 * routing varied and every other node as usual. Timed alone, the routings ranked differently (on cnn's
 * 20×8×8 pool at batch 32, MaxUnpool from Indices measured 0.18 vs first-max's 0.20 ms, while in the step
 * first-max saved 0.23 ms per run): ORT's MaxPool-with-Indices kernel costs what it costs in context.
 */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../../export/onnx/codec.ts';
import { IMAGE_SHAPE, INPUT_NAME } from '../../runtime/contract.ts';
import { gradientRules } from '../autodiff/rules/index.ts';
import {
  MAX_POOL_GRADIENTS,
  type MaxPoolGeometry,
  type MaxPoolGradient,
  maxPoolRule,
} from '../autodiff/rules/pooling.ts';
import { initializeWeights } from '../initialize.ts';
import type { Module } from '../layers/index.ts';
import { Rng } from '../random.ts';
import { buildGradientGraph, LABELS_NAME } from '../training-graph.ts';
import { randomTensors, timingKey, typicalTimes } from './timing.ts';

export function maxPoolKey(geo: MaxPoolGeometry, batch: number): string {
  const { input, kernel, strides, pads } = geo;
  return timingKey('max-pool-gradient in step', MAX_POOL_GRADIENTS, batch, { in: input, kernel, strides, pads });
}

const sameGeometry = (a: MaxPoolGeometry, b: MaxPoolGeometry) => JSON.stringify(a) === JSON.stringify(b);

/** Typical ms per gradient-graph run of `module` with each routing for its pools of geometry `geo`. */
export async function timeMaxPoolGradients(
  module: Module,
  geo: MaxPoolGeometry,
  batch: number,
): Promise<Map<MaxPoolGradient, number>> {
  const models = new Map<MaxPoolGradient, Uint8Array>();
  let graph: ReturnType<typeof buildGradientGraph> | undefined;
  for (const routing of MAX_POOL_GRADIENTS) {
    const MaxPool = maxPoolRule((other) => (sameGeometry(other, geo) ? routing : 'unpool'));
    graph = buildGradientGraph(module, { rules: { ...gradientRules, MaxPool } });
    models.set(routing, encodeModel(graph.model));
  }
  if (!graph) throw new Error('internal: no routings to time');
  const random = randomTensors(1);
  const weights = initializeWeights(graph.params, 0);
  const rng = new Rng(1);
  const feeds: Record<string, ort.Tensor> = {
    [INPUT_NAME]: random([batch, ...IMAGE_SHAPE]),
    [LABELS_NAME]: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch }, () => BigInt(rng.int(graph?.classes ?? 1))),
      [batch],
    ),
  };
  for (const p of graph.params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name) as Float32Array, p.shape);
  for (const r of graph.randomInputs) {
    const size = r.shape.reduce((a, b) => a * b, batch);
    feeds[r.name] = new ort.Tensor('float32', new Float32Array(size).fill(1), [batch, ...r.shape]);
  }
  return typicalTimes(models, feeds);
}
