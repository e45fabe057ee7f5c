/**
 * Epochs of shuffled mini-batches: a seeded Fisher–Yates permutation per epoch, batches of
 * `batchSize` with the short last one kept, normalized (and optionally augmented) into one reused
 * buffer per batch size.
 */

import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD } from '../contract.ts';
import { type Dataset, normalize } from '../data/dataset.ts';
import type { Rng } from '../random.ts';
import { type AugmentOptions, augmentImage } from './augment.ts';

export interface Batch {
  images: Float32Array;
  labels: Uint8Array;
  size: number;
}

export class BatchStream {
  private readonly normalized: Float32Array;
  private readonly scratch = new Float32Array(IMAGE_PIXELS);

  constructor(
    private readonly data: Dataset,
    private readonly batchSize: number,
    /** Shuffles and augmentation draw from this; its state goes into checkpoints. */
    readonly rng: Rng,
    private readonly augment?: AugmentOptions,
  ) {
    if (!(Number.isInteger(batchSize) && batchSize > 0))
      throw new Error(`batch size must be a positive integer, got ${batchSize}`);
    this.normalized = normalize(data.images);
  }

  /** Number of batches per epoch (the last one may be short). */
  get batchesPerEpoch(): number {
    return Math.ceil(this.data.count / this.batchSize);
  }

  /**
   * One epoch's batches, in a fresh random order. With `reuse`, every batch is written into the same
   * arrays (for a consumer done with each batch before it asks for the next, as the training loop is):
   * no 200 KB allocation per step for the garbage collector to chase. With `plain`, the images as they are
   * (no augmentation, and none of its draws).
   */
  *epoch({ reuse = false, plain = false }: { reuse?: boolean; plain?: boolean } = {}): Generator<Batch> {
    const augment = plain ? undefined : this.augment;
    const order = Uint32Array.from({ length: this.data.count }, (_, i) => i);
    for (let i = order.length - 1; i > 0; i--) {
      const j = this.rng.int(i + 1);
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    const background = -MNIST_MEAN / MNIST_STD;
    const largest = Math.min(this.batchSize, this.data.count); // no batch is bigger than the training set
    const shared = reuse
      ? { images: new Float32Array(largest * IMAGE_PIXELS), labels: new Uint8Array(largest) }
      : undefined;
    for (let start = 0; start < order.length; start += this.batchSize) {
      const size = Math.min(this.batchSize, order.length - start);
      const images = shared ? shared.images.subarray(0, size * IMAGE_PIXELS) : new Float32Array(size * IMAGE_PIXELS);
      const labels = shared ? shared.labels.subarray(0, size) : new Uint8Array(size);
      for (let k = 0; k < size; k++) {
        const index = order[start + k] as number;
        const src = this.normalized.subarray(index * IMAGE_PIXELS, (index + 1) * IMAGE_PIXELS);
        const dst = images.subarray(k * IMAGE_PIXELS, (k + 1) * IMAGE_PIXELS);
        if (augment) {
          this.scratch.set(src);
          augmentImage(this.scratch, dst, this.rng, augment, background);
        } else {
          dst.set(src);
        }
        labels[k] = this.data.labels[index] as number;
      }
      yield { images, labels, size };
    }
  }
}

/** The whole split normalized, for evaluation. */
export function normalizedSplit(data: Dataset): { images: Float32Array; labels: Uint8Array } {
  return { images: normalize(data.images), labels: data.labels };
}
