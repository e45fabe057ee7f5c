/** /predict's convenience around a served model: the normalization it needs, batching, softmax. */
import { normalizePixels } from '../runtime/contract.ts';
import { softmax } from './preprocess/softmax.ts';
import type { ServedVersion } from './served-version.ts';

export interface Prediction {
  prediction: number;
  probabilities: number[];
  logits: number[];
}

/** `images`: count × 784 raw intensities in [0, 1]. */
export async function predict(model: ServedVersion, images: Float32Array, count: number): Promise<Prediction[]> {
  const input = model.normalizesInput ? normalizePixels(images) : images;
  const outputs = await model.batcher.infer(input, count);
  const logits = outputs[model.signature.logits] as Float32Array;
  const classes = logits.length / count;
  return Array.from({ length: count }, (_, i) => {
    const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
    const probabilities = softmax(row);
    return { prediction: probabilities.indexOf(Math.max(...probabilities)), probabilities, logits: row };
  });
}
