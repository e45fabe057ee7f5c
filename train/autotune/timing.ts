/**
 * The fastest time per run of several equivalent graphs, runs interleaved so machine load hits all alike.
 * The minimum, not the median: other load only ever adds time, and on this project's shared 2-vCPU
 * machine whole stretches of runs slowed down 3× at once, which a median blurs into a coin toss.
 */
import * as ort from 'onnxruntime-node';
import { createSession } from '../../runtime/execution.ts';
import { Rng } from '../random.ts';

/** Runs before timing starts: a fresh session's first runs grow its memory arena and fault in pages. */
const WARM_UP_RUNS = 5;

export async function fastestTimes<K extends string>(
  models: ReadonlyMap<K, Uint8Array>,
  feeds: Record<string, ort.Tensor>,
  runs = 15,
): Promise<Map<K, number>> {
  const sessions = new Map<K, ort.InferenceSession>();
  try {
    for (const [name, model] of models) sessions.set(name, (await createSession(model, { threads: 1 })).session);
    const times = new Map<K, number[]>([...models.keys()].map((k) => [k, []]));
    for (let r = -WARM_UP_RUNS; r < runs; r++) {
      for (const [name, session] of sessions) {
        const start = performance.now();
        await session.run(feeds);
        if (r >= 0) times.get(name)?.push(performance.now() - start);
      }
    }
    return new Map([...times].map(([k, ms]) => [k, Math.min(...ms)]));
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release()));
  }
}

/**
 * A cache key: ORT's version, what is timed among which candidates (a new candidate means measuring
 * again), the batch and the geometry (`in 1x28x28 | kernel 5x5 | …`).
 */
export function timingKey(
  what: string,
  candidates: readonly string[],
  batch: number,
  geometry: Record<string, readonly number[]>,
): string {
  return [
    `ort ${ort.env.versions.node ?? ort.env.versions.common}`,
    what,
    `of ${candidates.join('/')}`,
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
