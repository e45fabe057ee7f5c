/**
 * Two builds of the native addon, kernel by kernel: the Conv weight and input gradients of every zoo
 * geometry, both builds loaded in one process and called alternately (a slow stretch of a shared VM hits
 * both), medians and the largest difference between their results. A development tool, not a benchmark:
 * how docs/benchmarks.md's kernel figures were measured.
 *
 *   git archive <rev> native | tar -x -C /tmp/old && (cd /tmp/old/native && node-gyp rebuild --nodedir=…)
 *   npx tsx bench/kernel-ab.ts --a /tmp/old/native/build/Release/mnist_native.node \
 *     --b native/build/Release/mnist_native.node [--batch 32] [--calls 200] [--models resnet,cnn7]
 */
import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Command } from 'commander';
import type { ConvGeometry } from '../core/autodiff/rules/conv-weight-gradient.ts';
import { MODEL_NAMES, type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { buildGradientGraph } from '../core/training/training-graph.ts';

/** The addon's raw kernels (node/native-kernels.ts wraps the same two). */
interface Kernels {
  convWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array, threads: number): void;
  convInputGradient(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: Int32Array, threads: number): void;
}

const opts = new Command()
  .requiredOption('--a <path>', 'the first build (the "before")')
  .requiredOption('--b <path>', 'the second build (the "after")')
  .option('--batch <n>', 'images per call', '32')
  .option('--calls <n>', 'calls per kernel and build', '200')
  .option('--models <list>', 'zoo models whose Conv geometries to time', MODEL_NAMES.join(','))
  .parse()
  .opts<{ a: string; b: string; batch: string; calls: string; models: string }>();

const load = (path: string) => createRequire(import.meta.url)(resolve(path)) as Kernels;
const [a, b] = [load(opts.a), load(opts.b)];
const [batch, calls] = [Number(opts.batch), Number(opts.calls)];

/** Every distinct Conv geometry of the models, with the models it comes from. */
const geometries = new Map<string, { geo: ConvGeometry; models: Set<string> }>();
for (const name of opts.models.split(',') as ModelName[]) {
  const graph = buildGradientGraph(ZOO[name].build(), { externalConvWeights: () => true });
  for (const external of graph.external) {
    if (external.kind !== 'conv') continue;
    const { geometry } = external;
    const key = JSON.stringify(geometry);
    const entry = geometries.get(key) ?? { geo: geometry, models: new Set<string>() };
    entry.models.add(name);
    geometries.set(key, entry);
  }
}

const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[xs.length >> 1] ?? Number.NaN;
const maxDiff = (p: Float32Array, q: Float32Array) => p.reduce((m, v, i) => Math.max(m, Math.abs(v - (q[i] ?? 0))), 0);
/** Alternating calls of both builds; their medians in ms and the largest difference of their outputs. */
function race(call: (k: Kernels, out: Float32Array) => void, size: number): string {
  const outs = [new Float32Array(size), new Float32Array(size)];
  const times: number[][] = [[], []];
  for (let i = 0; i < calls; i++)
    [a, b].forEach((k, j) => {
      const start = performance.now();
      call(k, outs[j] as Float32Array);
      times[j]?.push(performance.now() - start);
    });
  const [ta, tb] = times.map((t) => median(t).toFixed(3));
  return `${ta} → ${tb} ms (max |Δ| ${maxDiff(outs[0] as Float32Array, outs[1] as Float32Array).toExponential(1)})`;
}

const rng = new Rng(0);
const random = (n: number) => Float32Array.from({ length: n }, () => rng.uniform(-1, 1));
console.log(`batch ${batch}, 1 thread, median of ${calls} alternating calls; a = ${opts.a}, b = ${opts.b}`);
for (const { geo, models } of geometries.values()) {
  const [c, h, w] = geo.input;
  const [m, ho, wo] = geo.output;
  const [kh, kw] = geo.kernel;
  const shape = Int32Array.of(
    batch,
    c,
    h,
    w,
    m,
    ho,
    wo,
    kh,
    kw,
    ...geo.strides,
    geo.pads[0],
    geo.pads[1],
    ...geo.dilations,
  );
  const [x, dy, weights] = [random(batch * c * h * w), random(batch * m * ho * wo), random(m * c * kh * kw)];
  const dW = race((k, out) => k.convWeightGradient(x, dy, out, shape, 1), weights.length);
  // The images' Conv needs no input gradient.
  const dX = c > 1 ? race((k, out) => k.convInputGradient(dy, weights, out, shape, 1), x.length) : '–';
  const what = `${c}→${m} ${kh}×${kw} on ${h}×${w} s${geo.strides[0]} p${geo.pads[0]} (${[...models].join(', ')})`;
  console.log(`${what}\n  dW ${dW}\n  dX ${dX}`);
}
