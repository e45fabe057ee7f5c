/** Steady-state training throughput of our ONNX training step (one model, one thread count). */
import { sgd } from '../train/optim/index.ts';
import { Rng } from '../train/random.ts';
import { Trainer } from '../train/trainer.ts';
import { type ModelName, ZOO } from '../train/zoo/index.ts';

export interface ThroughputOptions {
  model: ModelName;
  threads: number;
  batch: number;
  seconds: number;
}

export interface Throughput {
  imagesPerSecond: number;
  /** How the step ran, for the table. */
  mode: string;
}

/** Images per second over `seconds` of steps after 5 warm-up steps, on a fixed random batch. */
export async function ourTrainingThroughput({
  model,
  threads,
  batch,
  seconds,
}: ThroughputOptions): Promise<Throughput> {
  const rng = new Rng(0);
  const images = Float32Array.from({ length: batch * 784 }, () => rng.uniform(-0.5, 2.5));
  const labels = Array.from({ length: batch }, () => rng.int(10));
  const trainer = await Trainer.create(ZOO[model].build(), { optimizer: sgd({ momentum: 0.5 }), threads, seed: 0 });
  try {
    for (let i = 0; i < 5; i++) await trainer.step(images, labels, 0.01);
    let steps = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      await trainer.step(images, labels, 0.01);
      steps++;
    }
    return { imagesPerSecond: (steps * batch) / ((performance.now() - start) / 1000), mode: '1 session' };
  } finally {
    await trainer.release();
  }
}
