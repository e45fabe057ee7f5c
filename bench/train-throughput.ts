/** Steady-state training throughput of our ONNX training step (one model, one thread count). */
import { IMAGE_PIXELS, NUM_CLASSES } from '../core/contract.ts';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { sgd } from '../core/training/optim/index.ts';
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

/** Images per second over `seconds` of steps after 5 warm-up steps, on a fixed random batch. */
export async function ourTrainingThroughput(options: ThroughputOptions): Promise<Throughput> {
  const { model, threads, batch, seconds, parallelism, autotune } = options;
  const rng = new Rng(0);
  const images = Float32Array.from({ length: batch * IMAGE_PIXELS }, () => rng.uniform(-0.5, 2.5));
  const labels = Array.from({ length: batch }, () => rng.int(NUM_CLASSES));
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
