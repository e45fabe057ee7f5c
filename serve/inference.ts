/** Run images through a served model: normalization when it expects it, batching, softmax. */
import { MNIST_MEAN, MNIST_STD, type ServedVersion } from './repository.ts';

export interface Prediction {
  prediction: number;
  probabilities: number[];
  logits: number[];
}

export function softmax(logits: ArrayLike<number>): number[] {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i] as number);
  const exps = Array.from(logits, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

/** `images`: count × 784 raw intensities in [0, 1]. */
export async function infer(model: ServedVersion, images: Float32Array, count: number): Promise<Prediction[]> {
  const input = model.normalizesInput ? images.map((v) => (v - MNIST_MEAN) / MNIST_STD) : images;
  const logits = await model.batcher.infer(input, count);
  const classes = logits.length / count;
  return Array.from({ length: count }, (_, i) => {
    const row = Array.from(logits.subarray(i * classes, (i + 1) * classes));
    const probabilities = softmax(row);
    return { prediction: probabilities.indexOf(Math.max(...probabilities)), probabilities, logits: row };
  });
}
