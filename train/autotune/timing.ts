/**
 * Typical time per run of several equivalent graphs, robust to a shared machine: each round runs every
 * graph once, back to back, and a graph's score is the median over rounds of its share of the round
 * (times the median round), so a stretch of slowdown hits a whole round and cancels out. Measured on this
 * project's 2-vCPU machine: medians of 9 runs, and then minimums of 15, still flipped picks when stretches
 * of 3× slowdown (a process's first second, neighbours' load) covered part of a measurement.
 */

import * as ort from 'onnxruntime-node';
import type { ConvGeometry } from '../../core/autodiff/rules/conv-weight-gradient.ts';
import { Rng } from '../../core/random.ts';
import { createSession } from '../../node/execution.ts';
import { sizeOf } from '../../onnx/tensor.ts';

/** Rounds before timing starts: a fresh session's first runs grow its memory arena and fault in pages. */
const WARM_UP_ROUNDS = 3;
const MIN_ROUNDS = 7;

export async function typicalTimes<K extends string>(
  models: ReadonlyMap<K, Uint8Array>,
  feeds: Record<string, ort.Tensor>,
  settings: { rounds?: number; budgetMs?: number } = {},
): Promise<Map<K, number>> {
  const sessions = new Map<K, ort.InferenceSession>();
  try {
    for (const [name, model] of models) sessions.set(name, (await createSession(model, { threads: 1 })).session);
    return await typicalRunTimes(sessions, feeds, settings);
  } finally {
    await Promise.all([...sessions.values()].map((s) => s.release()));
  }
}

/** Anything that runs on the feeds: a session, or a cut gradient graph's runner. */
export interface Runnable {
  run(feeds: Record<string, ort.Tensor>): Promise<unknown>;
}

/** `typicalTimes` for runners already made. */
export async function typicalRunTimes<K extends string>(
  runners: ReadonlyMap<K, Runnable>,
  feeds: Record<string, ort.Tensor>,
  { rounds = 15, budgetMs = 600 }: { rounds?: number; budgetMs?: number } = {},
): Promise<Map<K, number>> {
  const shares = new Map<K, number[]>([...runners.keys()].map((k) => [k, []]));
  const roundTimes: number[] = [];
  const started = performance.now();
  // At least MIN_ROUNDS, then as many of `rounds` as fit the budget (a big model's step is slow).
  for (let r = -WARM_UP_ROUNDS; r < rounds; r++) {
    if (r >= MIN_ROUNDS && performance.now() - started > budgetMs) break;
    const times = new Map<K, number>();
    for (const [name, runner] of runners) {
      const start = performance.now();
      await runner.run(feeds);
      times.set(name, performance.now() - start);
    }
    if (r < 0) continue;
    const mean = [...times.values()].reduce((a, b) => a + b, 0) / times.size;
    roundTimes.push(mean);
    for (const [name, ms] of times) shares.get(name)?.push(ms / mean);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Infinity;
  const typicalRound = median(roundTimes);
  return new Map([...shares].map(([k, xs]) => [k, median(xs) * typicalRound]));
}

/**
 * A cache key: ORT's version, what is timed among which candidates (a new candidate means measuring again),
 * what else the timing depends on (`also`: the native addon's build), the batch and the geometry
 * (`in 1x28x28 | kernel 5x5 | …`).
 */
export function timingKey(
  what: string,
  candidates: readonly string[],
  batch: number,
  geometry: Record<string, readonly number[]>,
  also: readonly string[] = [],
): string {
  return [
    `ort ${ort.env.versions.node ?? ort.env.versions.common}`,
    what,
    `of ${candidates.join('/')}`,
    ...also,
    `batch ${batch}`,
    ...Object.entries(geometry).map(([name, dims]) => `${name} ${dims.join('x')}`),
  ].join(' | ');
}

/** A Conv's timing key: its whole geometry, so two convolutions share a measurement only when nothing differs. */
export function convTimingKey(
  what: string,
  candidates: readonly string[],
  geo: ConvGeometry,
  batch: number,
  also: readonly string[] = [],
): string {
  const { input, output, kernel, strides, pads, dilations } = geo;
  return timingKey(what, candidates, batch, { in: input, out: output, kernel, strides, pads, dilations }, also);
}

/** Seeded uniform(-1, 1) float tensors for timing runs: `random(dims)`. */
export function randomTensors(seed = 1): (dims: number[]) => ort.Tensor {
  const rng = new Rng(seed);
  return (dims) =>
    new ort.Tensor(
      'float32',
      Float32Array.from({ length: sizeOf(dims) }, () => rng.uniform(-1, 1)),
      dims,
    );
}
