/** Run images through a served model: normalization when it expects it, batching, softmax. */

import { normalizePixels } from '../runtime/contract.ts';
import { softmax } from './preprocess/softmax.ts';
import type { ServedVersion } from './repository.ts';

export interface Prediction {
  prediction: number;
  probabilities: number[];
  logits: number[];
}

/** `images`: count × 784 raw intensities in [0, 1]. */
export async function infer(model: ServedVersion, images: Float32Array, count: number): Promise<Prediction[]> {
  const input = model.normalizesInput ? normalizePixels(images) : images;
  const logits = await model.batcher.infer(input, count);
  const classes = logits.length / count;
  return Array.from({ length: count }, (_, i) => {
    const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
    const probabilities = softmax(row);
    return { prediction: probabilities.indexOf(Math.max(...probabilities)), probabilities, logits: row };
  });
}
