/** Steady-state training throughput of our ONNX training step (one model, one thread count). */
import { IMAGE_PIXELS, MNIST_MEAN, MNIST_STD } from '../core/contract.ts';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { sgd } from '../core/training/optim/index.ts';
import { loadMnist } from '../node/mnist.ts';
import {
  type CreateTrainerOptions,
  createTrainer,
  describeParallelism,
  type Parallelism,
} from '../train/parallel/create-trainer.ts';

export interface ThroughputOptions {
  model: ModelName;
  threads: number;
  batch: number;
  seconds: number;
  /** How to use more than one thread (default: what `createTrainer` picks). */
  parallelism?: Parallelism;
  /** Autotune the worker step's gradient formulations, as `train` does (cached in `cacheDir`). */
  autotune?: CreateTrainerOptions['autotune'];
}

export interface Throughput {
  imagesPerSecond: number;
  /** How the step ran, for the table. */
  mode: string;
}

/**
 * The batch both sides of `--what train` step on: MNIST's first `batch` training images, normalized as the
 * tutorial does, and their labels (bench/torch_train.py --data reads the same). Real digits, not noise:
 * PyTorch's step ran up to ~10% faster on them than on random inputs (cnn, 1 thread), so noise flattered us.
 */
export async function benchBatch(batch: number): Promise<{ images: Float32Array; labels: number[] }> {
  const train = await loadMnist('train');
  if (batch > train.count) throw new Error(`a benchmark batch of ${batch} is more than MNIST's ${train.count} images`);
  const images = Float32Array.from(
    train.images.subarray(0, batch * IMAGE_PIXELS),
    (v) => (v / 255 - MNIST_MEAN) / MNIST_STD,
  );
  return { images, labels: Array.from(train.labels.subarray(0, batch)) };
}

/** Images per second over `seconds` of steps after 5 warm-up steps, on a fixed batch of real digits. */
export async function ourTrainingThroughput(options: ThroughputOptions): Promise<Throughput> {
  const { model, threads, batch, seconds, parallelism, autotune } = options;
  const { images, labels } = await benchBatch(batch);
  const settings = { optimizer: sgd({ momentum: 0.5 }), threads, seed: 0, parallelism, autotune, batchSize: batch };
  const trainer = await createTrainer(ZOO[model].build(), settings);
  try {
    for (let i = 0; i < 5; i++) await trainer.step(images, labels, 0.01);
    let steps = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      await trainer.step(images, labels, 0.01);
      steps++;
    }
    const imagesPerSecond = (steps * batch) / ((performance.now() - start) / 1000);
    return { imagesPerSecond, mode: describeParallelism(settings, ZOO[model].build()) };
  } finally {
    await trainer.release();
  }
}
