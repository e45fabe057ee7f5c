/** Our inference speed for one zoo model: batch-1 latency and batch-N throughput of its ONNX model in ORT. */
import * as ort from 'onnxruntime-node';
import { encodeModel } from '../export/onnx/codec.ts';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../runtime/contract.ts';
import { createSession } from '../runtime/execution.ts';
import { inferenceModel } from '../train/inference-model.ts';
import { Rng } from '../train/random.ts';
import { type ModelName, ZOO } from '../train/zoo/index.ts';
import { median } from './stats.ts';

export interface InferenceSpeed {
  /** Median batch-1 latency, ms. */
  latencyMs: number;
  /** Images/s at the given batch size. */
  imagesPerSecond: number;
}

/** Half of `seconds` timing batch-1 runs, half timing batch-`batch` runs, after 10 warm-up runs of each. */
export async function ourInferenceSpeed(
  model: ModelName,
  threads: number,
  batch: number,
  seconds: number,
): Promise<InferenceSpeed> {
  const rng = new Rng(0);
  const input = (n: number) =>
    new ort.Tensor(
      'float32',
      Float32Array.from({ length: n * IMAGE_PIXELS }, () => rng.uniform(-0.5, 2.5)),
      [n, ...IMAGE_SHAPE],
    );
  const [one, many] = [input(1), input(batch)];
  const { session } = await createSession(encodeModel(inferenceModel(ZOO[model].build(), { seed: 0 }).model), {
    threads,
  });
  try {
    for (let i = 0; i < 10; i++) {
      await session.run({ [INPUT_NAME]: one });
      await session.run({ [INPUT_NAME]: many });
    }
    const latencies: number[] = [];
    let start = performance.now();
    while (performance.now() - start < (seconds * 1000) / 2) {
      const t = performance.now();
      await session.run({ [INPUT_NAME]: one });
      latencies.push(performance.now() - t);
    }
    let runs = 0;
    start = performance.now();
    while (performance.now() - start < (seconds * 1000) / 2) {
      await session.run({ [INPUT_NAME]: many });
      runs++;
    }
    const imagesPerSecond = (runs * batch) / ((performance.now() - start) / 1000);
    return { latencyMs: median(latencies), imagesPerSecond };
  } finally {
    await session.release();
  }
}
