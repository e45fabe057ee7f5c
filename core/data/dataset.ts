/** MNIST-shaped data in memory, and the tutorial's input transform: no Node APIs (the browser trains on it too). */
import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD } from '../contract.ts';

/** Raw images (0..255, row-major 28×28 each) and labels (0..9). */
export interface Dataset {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** The first `limit` examples (all when undefined). */
export function take(data: Dataset, limit?: number): Dataset {
  if (limit === undefined || limit >= data.count) return data;
  return {
    images: data.images.subarray(0, limit * IMAGE_PIXELS),
    labels: data.labels.subarray(0, limit),
    count: limit,
  };
}

/**
 * The last `count` examples held out of `data`: [the rest to train on, the held-out part]. The tail, not a
 * random draw, so every run holding out `count` holds out the same images (a sweep's trials are ranked on them).
 */
export function holdOut(data: Dataset, count: number): [Dataset, Dataset] {
  if (count >= data.count)
    throw new Error(`cannot hold out ${count} of ${data.count} training images: at least one must remain to train on`);
  const kept = data.count - count;
  return [
    take(data, kept),
    { images: data.images.subarray(kept * IMAGE_PIXELS), labels: data.labels.subarray(kept), count },
  ];
}

/** (x/255 − mean)/std into `out` (or a new array), the tutorial's input transform. */
export function normalize(pixels: Uint8Array, out = new Float32Array(pixels.length)): Float32Array {
  const scale = 1 / (255 * MNIST_STD);
  const shift = MNIST_MEAN / MNIST_STD;
  for (let i = 0; i < pixels.length; i++) out[i] = (pixels[i] as number) * scale - shift;
  return out;
}
