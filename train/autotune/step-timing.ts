/**
 * Timing a node's gradient formulations where they run: in the model's whole gradient graph, the
 * formulation varied for the nodes of one geometry and every other node built as usual. Timed alone, on
 * random tensors of their shapes, the formulations ranked differently from what a step gains (on cnn at
 * batch 32: MaxUnpool from Indices looked 10% cheaper than first-max for the second pool, im2col 15%
 * cheaper than Conv(Xᵀ, dYᵀ) for the first conv; in the step first-max saved 7% and Conv(Xᵀ, dYᵀ) 4%):
 * memory traffic, node overheads and ORT's kernels cost what they cost in context.
 */
import * as ort from 'onnxruntime-node';
import type { GradientRule } from '../../core/autodiff/rule.ts';
import { IMAGE_SHAPE, INPUT_NAME } from '../../core/contract.ts';
import { initializeWeights } from '../../core/model/initialize.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { Rng } from '../../core/random.ts';
import { buildGradientGraph, type GradientGraph, LABELS_NAME } from '../../core/training/training-graph.ts';
import { encodeModel } from '../../onnx/codec.ts';
import { sizeOf } from '../../onnx/tensor.ts';
import { randomTensors, typicalTimes } from './timing.ts';

/** Typical ms per run of `module`'s gradient graph at `batch` images, built with each candidate's rule table. */
export async function timeInStep<K extends string>(
  module: Module,
  batch: number,
  candidates: ReadonlyMap<K, Record<string, GradientRule>>,
): Promise<Map<K, number>> {
  const models = new Map<K, Uint8Array>();
  let graph: GradientGraph | undefined;
  for (const [name, rules] of candidates) {
    graph = buildGradientGraph(module, { rules });
    models.set(name, encodeModel(graph.model));
  }
  if (!graph) throw new Error('internal: no candidates to time');
  return typicalTimes(models, stepFeeds(graph, batch));
}

/** Feeds for one gradient-graph run at `batch` images: random images, seeded labels and initial weights. */
export function stepFeeds(graph: GradientGraph, batch: number): Record<string, ort.Tensor> {
  const { classes } = graph;
  const random = randomTensors(1);
  const weights = initializeWeights(graph.params, 0);
  const rng = new Rng(1);
  const feeds: Record<string, ort.Tensor> = {
    [INPUT_NAME]: random([batch, ...IMAGE_SHAPE]),
    [LABELS_NAME]: new ort.Tensor(
      'int64',
      BigInt64Array.from({ length: batch }, () => BigInt(rng.int(classes))),
      [batch],
    ),
  };
  for (const p of graph.params) feeds[p.name] = new ort.Tensor('float32', weights.get(p.name) as Float32Array, p.shape);
  for (const r of graph.randomInputs) {
    feeds[r.name] = new ort.Tensor('float32', new Float32Array(batch * sizeOf(r.shape)).fill(1), [batch, ...r.shape]);
  }
  return feeds;
}

export const sameGeometry = (a: object, b: object) => JSON.stringify(a) === JSON.stringify(b);
