/** Our inference speed for one zoo model: batch-1 latency and batch-N throughput of its ONNX model in ORT. */
import * as ort from 'onnxruntime-node';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../core/contract.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { createSession } from '../node/execution.ts';
import { encodeModel } from '../onnx/codec.ts';
import { median } from './stats.ts';

export interface InferenceSpeed {
  /** Median batch-1 latency, ms. */
  latencyMs: number;
  /** Images/s at the given batch size. */
  imagesPerSecond: number;
}

type Session = ort.InferenceSession;

/** A random input batch of `n` images. */
function randomInput(rng: Rng, n: number): ort.Tensor {
  const pixels = Float32Array.from({ length: n * IMAGE_PIXELS }, () => rng.uniform(-0.5, 2.5));
  return new ort.Tensor('float32', pixels, [n, ...IMAGE_SHAPE]);
}

/** The model's exported inference graph in an ORT session with `threads` intra-op threads, for `use`. */
async function withInferenceSession<T>(
  model: ModelName,
  threads: number,
  use: (session: Session) => Promise<T>,
): Promise<T> {
  const { session } = await createSession(encodeModel(inferenceModel(ZOO[model].build(), { seed: 0 }).model), {
    threads,
  });
  try {
    return await use(session);
  } finally {
    await session.release();
  }
}

/** Images/s of back-to-back runs at batch `batch` for `seconds`, after 10 warm-up runs. */
async function throughput(session: Session, rng: Rng, batch: number, seconds: number): Promise<number> {
  const feeds = { [INPUT_NAME]: randomInput(rng, batch) };
  for (let i = 0; i < 10; i++) await session.run(feeds);
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < seconds * 1000) {
    await session.run(feeds);
    runs++;
  }
  return (runs * batch) / ((performance.now() - start) / 1000);
}

/** Half of `seconds` timing batch-1 runs, half timing batch-`batch` runs, after 10 warm-up runs of each. */
export async function ourInferenceSpeed(
  model: ModelName,
  threads: number,
  batch: number,
  seconds: number,
): Promise<InferenceSpeed> {
  return withInferenceSession(model, threads, async (session) => {
    const rng = new Rng(0);
    const one = { [INPUT_NAME]: randomInput(rng, 1) };
    for (let i = 0; i < 10; i++) await session.run(one);
    const latencies: number[] = [];
    const start = performance.now();
    while (performance.now() - start < (seconds * 1000) / 2) {
      const t = performance.now();
      await session.run(one);
      latencies.push(performance.now() - t);
    }
    const imagesPerSecond = await throughput(session, rng, batch, seconds / 2);
    return { latencyMs: median(latencies), imagesPerSecond };
  });
}

/** Images/s of the exported model's forward pass at `batch` for `seconds`: the denominator of step / forward. */
export function ourForwardThroughput(
  model: ModelName,
  threads: number,
  batch: number,
  seconds: number,
): Promise<number> {
  return withInferenceSession(model, threads, (session) => throughput(session, new Rng(0), batch, seconds));
}
