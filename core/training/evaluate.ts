/**
 * Accuracy and mean cross-entropy of a module with given weights on a dataset, through an inference
 * session (BatchNorm and Dropout in inference form), on whichever ONNX Runtime is injected — the one
 * evaluation `Trainer` (node or web) and `ParallelTrainer` share.
 */
import { encodeModel } from '../../onnx/codec.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME, LOGITS_NAME } from '../contract.ts';
import { inferenceModel } from '../model/inference-model.ts';
import type { Weights } from '../model/initialize.ts';
import type { Module } from '../model/layers/index.ts';
import type { OrtRuntime, SessionSettings, Tensor } from '../ort-runtime.ts';

export interface EvaluationResult {
  loss: number;
  correct: number;
  total: number;
  /** Percent. */
  accuracy: number;
}

export async function evaluateWeights(
  runtime: OrtRuntime,
  module: Module,
  weights: Weights,
  settings: SessionSettings,
  images: Float32Array,
  labels: ArrayLike<number>,
  batchSize = 1000,
): Promise<EvaluationResult> {
  const { model } = inferenceModel(module, { weights });
  const { session } = await runtime.createSession(encodeModel(model), { ...settings, forceCpuNodeNames: [] });
  try {
    let lossSum = 0;
    let correct = 0;
    const total = labels.length;
    for (let start = 0; start < total; start += batchSize) {
      const n = Math.min(batchSize, total - start);
      const batch = images.subarray(start * IMAGE_PIXELS, (start + n) * IMAGE_PIXELS);
      const out = await session.run({ [INPUT_NAME]: new runtime.Tensor('float32', batch, [n, ...IMAGE_SHAPE]) });
      const logits = (out[LOGITS_NAME] as Tensor).data as Float32Array;
      const classes = logits.length / n;
      for (let i = 0; i < n; i++) {
        const row = logits.subarray(i * classes, (i + 1) * classes);
        let best = 0;
        let max = -Infinity;
        for (let k = 0; k < classes; k++) {
          if ((row[k] as number) > max) {
            max = row[k] as number;
            best = k;
          }
        }
        let sum = 0;
        for (let k = 0; k < classes; k++) sum += Math.exp((row[k] as number) - max);
        const label = labels[start + i] as number;
        lossSum += max + Math.log(sum) - (row[label] as number);
        if (best === label) correct++;
      }
    }
    return { loss: lossSum / total, correct, total, accuracy: (100 * correct) / total };
  } finally {
    await session.release();
  }
}
