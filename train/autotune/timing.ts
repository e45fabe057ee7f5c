/** Median time per run of several equivalent graphs, runs interleaved so machine load hits all alike. */
import * as ort from 'onnxruntime-node';
import { createSession } from '../../runtime/execution.ts';
import { Rng } from '../random.ts';

export async function medianTimes<K extends string>(
  models: ReadonlyMap<K, Uint8Array>,
  feeds: Record<string, ort.Tensor>,
  runs = 9,
): Promise<Map<K, number>> {
  const sessions = new Map<K, ort.InferenceSession>();
  try {
    for (const [name, model] of models) sessions.set(name, (await createSession(model, { threads: 1 })).session);
    const times = new Map<K, number[]>([...models.keys()].map((k) => [k, []]));
    for (let r = -2; r < runs; r++) {
      for (const [name, session] of sessions) {
        const start = performance.now();
        await session.run(feeds);
        if (r >= 0) times.get(name)?.push(performance.now() - start);
      }
    }
    return new Map(
      [...times].map(([k, ms]) => [k, [...ms].sort((a, b) => a - b)[Math.floor(ms.length / 2)] ?? Infinity]),
    );
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release()));
  }
}

/** A cache key: ORT's version, what is timed, the batch and the geometry (`in 1x28x28 | kernel 5x5 | …`). */
export function timingKey(what: string, batch: number, geometry: Record<string, readonly number[]>): string {
  return [
    `ort ${ort.env.versions.node ?? ort.env.versions.common}`,
    what,
    `batch ${batch}`,
    ...Object.entries(geometry).map(([name, dims]) => `${name} ${dims.join('x')}`),
  ].join(' | ');
}

/** Seeded uniform(-1, 1) float tensors for timing runs: `random(dims)`. */
export function randomTensors(seed = 1): (dims: number[]) => ort.Tensor {
  const rng = new Rng(seed);
  return (dims) =>
    new ort.Tensor(
      'float32',
      Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1)),
      dims,
    );
}
