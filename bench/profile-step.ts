/**
 * Where one training step's time goes: ORT's own profiler over the whole training graph (SGD, the
 * autotuned formulations unless --no-autotune), summed per op type and per node, beside the exported
 * forward pass timed in its own session. A development tool, not a benchmark: profiling adds overhead.
 *
 *   npx tsx bench/profile-step.ts --model resnet --batch 64 --threads 1 [--no-autotune] [--top 25] [--external]
 *
 * --external profiles the gradient graph that leaves Conv weight gradients to the native kernel (its
 * outputs X and dY instead of dW; no optimizer update) instead of the whole step. --native times the
 * gradient step as the native trainer runs it — ORT segments and the native chains the autotuner chose
 * between them (node/segmented-session.ts) — step by step, without ORT's profiler.
 */

import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import { IMAGE_PIXELS, IMAGE_SHAPE, INPUT_NAME } from '../core/contract.ts';
import { inferenceModel } from '../core/model/inference-model.ts';
import { initializeWeights } from '../core/model/initialize.ts';
import { type ModelName, zooEntry } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { sgd } from '../core/training/optim/index.ts';
import { buildGradientGraph, buildTrainingGraph, LABELS_NAME, LR_NAME } from '../core/training/training-graph.ts';
import { sessionOptions } from '../node/execution.ts';
import { nchwcBlockSize } from '../node/nchwc.ts';
import { createGradientRunner, encodeSegmentPlan } from '../node/segmented-session.ts';
import { encodeModel } from '../onnx/codec.ts';
import { sizeOf } from '../onnx/tensor.ts';
import { autotuneRules } from '../train/autotune/autotune.ts';
import { defaultCacheDir } from '../train/autotune/cache.ts';
import { stepFeeds } from '../train/autotune/step-timing.ts';

interface ProfileEvent {
  cat: string;
  name: string;
  dur: number;
  args?: { op_name?: string };
}

const program = new Command()
  .option('--model <name>', 'zoo model', 'cnn')
  .option('--batch <n>', 'batch size', '64')
  .option('--threads <n>', 'intra-op threads', '1')
  .option('--steps <n>', 'profiled steps', '40')
  .option('--top <n>', 'nodes to list', '20')
  .option('--no-autotune', "the default formulations instead of the autotuner's")
  .option('--external', 'the gradient graph with Conv weight gradients left outside it')
  .option('--native', 'time the native step (segments and native chains) step by step')
  .option('--no-nchwc', "plain Convs in the forward pass, not ORT's NCHWc ones as train builds it")
  .parse();
const opts = program.opts<{
  model: string;
  batch: string;
  threads: string;
  steps: string;
  top: string;
  autotune: boolean;
  external?: boolean;
  native?: boolean;
  nchwc: boolean;
}>();
const model = opts.model as ModelName;
const [batch, threads, steps] = [Number(opts.batch), Number(opts.threads), Number(opts.steps)];
const module = zooEntry(model).build();

const tuned = opts.autotune
  ? await autotuneRules(module, { batch, cacheDir: defaultCacheDir(), native: opts.native })
  : undefined;
const rules = tuned?.rules;
const nchwcBlock = opts.nchwc ? await nchwcBlockSize() : undefined;
if (opts.native) {
  await profileNative();
  process.exit(0);
}
const graph = opts.external
  ? (() => {
      const g = buildGradientGraph(module, { rules, externalConvWeights: () => true, nchwcBlock });
      return { ...g, carried: g.params.map((p) => ({ name: p.name, shape: p.shape })) };
    })()
  : buildTrainingGraph(module, { optimizer: sgd({ momentum: 0.5 }), rules, nchwcBlock });
const rng = new Rng(0);
const images = new ort.Tensor(
  'float32',
  Float32Array.from({ length: batch * IMAGE_PIXELS }, () => rng.uniform(-0.5, 2.5)),
  [batch, ...IMAGE_SHAPE],
);
const weights = initializeWeights(graph.params, 0);
const feeds: Record<string, ort.Tensor> = {
  [INPUT_NAME]: images,
  [LABELS_NAME]: new ort.Tensor(
    'int64',
    BigInt64Array.from({ length: batch }, () => BigInt(rng.int(10))),
    [batch],
  ),
};
if (!opts.external) feeds[LR_NAME] = new ort.Tensor('float32', Float32Array.of(0.01), []);
for (const c of graph.carried) {
  const size = sizeOf(c.shape);
  feeds[c.name] = new ort.Tensor('float32', weights.get(c.name) ?? new Float32Array(size), c.shape);
}

async function msPerRun(session: ort.InferenceSession, inputs: Record<string, ort.Tensor>, runs: number) {
  for (let i = 0; i < 5; i++) await session.run(inputs);
  const start = performance.now();
  for (let i = 0; i < runs; i++) await session.run(inputs);
  return (performance.now() - start) / runs;
}

// Unprofiled times first: the step and the exported forward pass, side by side.
const plain = await ort.InferenceSession.create(encodeModel(graph.model), sessionOptions('cpu', { threads }));
const forward = await ort.InferenceSession.create(
  encodeModel(inferenceModel(module, { seed: 0 }).model),
  sessionOptions('cpu', { threads }),
);
const stepMs = await msPerRun(plain, feeds, steps);
const forwardMs = await msPerRun(forward, { [INPUT_NAME]: images }, steps * 3);

const prefix = join(tmpdir(), `profile-${model}-${process.pid}`);
const profiled = await ort.InferenceSession.create(encodeModel(graph.model), {
  ...sessionOptions('cpu', { threads }),
  enableProfiling: true,
  profileFilePrefix: prefix,
});
for (let i = 0; i < 5 + steps; i++) await profiled.run(feeds);
profiled.endProfiling();
await profiled.release();
const file = readdirMatching(prefix);
const events = JSON.parse(readFileSync(file, 'utf8')) as ProfileEvent[];
rmSync(file);

const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const total = kernels.reduce((s, e) => s + e.dur, 0);
const sum = (key: (e: ProfileEvent) => string) => {
  const m = new Map<string, number>();
  for (const e of kernels) m.set(key(e), (m.get(key(e)) ?? 0) + e.dur);
  return [...m].sort((a, b) => b[1] - a[1]);
};
const runs = 5 + steps;
const line = (name: string, us: number) =>
  `${name.padEnd(60)} ${(us / runs / 1000).toFixed(3).padStart(7)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%`;

console.log(
  `${model} batch ${batch}, ${threads} thread(s), ${opts.autotune ? 'autotuned' : 'default'} formulations; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
);
console.log(
  `step ${stepMs.toFixed(2)} ms, forward ${forwardMs.toFixed(2)} ms, step/forward ${(stepMs / forwardMs).toFixed(1)}; kernels ${(total / runs / 1000).toFixed(2)} ms/step`,
);
console.log('\nby op type:');
for (const [op, us] of sum((e) => e.args?.op_name ?? '?')) console.log(line(op, us));
console.log('\nby node:');
for (const [node, us] of sum((e) => `${e.name.replace(/_kernel_time$/, '')} (${e.args?.op_name})`).slice(
  0,
  Number(opts.top),
))
  console.log(line(node, us));
await plain.release();
await forward.release();

/** The profiler's output file: ORT appends a timestamp to the prefix. */
function readdirMatching(prefix: string): string {
  const base = prefix.slice(tmpdir().length + 1);
  const found = readdirSync(tmpdir()).find((f) => f.startsWith(base));
  if (!found) throw new Error(`no profile file starting ${prefix}`);
  return join(tmpdir(), found);
}

/** Per-step medians of the native step (--native): which ORT segments and native kernels its time goes to. */
async function profileNative(): Promise<void> {
  const nativeGradients = tuned?.nativeGradients ?? { convInputs: () => true, maxPools: () => true };
  const graph = buildGradientGraph(module, { rules, externalConvWeights: () => true, nativeGradients, nchwcBlock });
  const plan = graph.segments;
  const runner = await createGradientRunner(plan ? encodeSegmentPlan(plan) : encodeModel(graph.model));
  const feeds = stepFeeds(graph, batch);
  const times: number[][] = (plan?.steps ?? [undefined]).map(() => []);
  const totals: number[] = [];
  for (let i = 0; i < 5 + steps; i++) {
    const start = performance.now();
    await runner.run(feeds, (index, ms) => {
      if (i >= 5) times[index]?.push(ms);
    });
    if (i >= 5) totals.push(performance.now() - start);
  }
  await runner.release();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1] ?? 0;
  console.log(
    `${model} batch ${batch}, native step (${opts.autotune ? 'autotuned' : 'every chain start native'}); load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
  );
  console.log(`gradient step ${median(totals).toFixed(2)} ms (no update, no native dW)\n`);
  for (const [index, step] of (plan?.steps ?? []).entries()) {
    const what =
      step.kind === 'graph'
        ? `ORT segment: ${step.model.graph?.node?.length} nodes, ${step.inputs.length} in, ${step.outputs.length} out`
        : `native ${step.node.op_type} ${step.node.input.join(', ')}`;
    console.log(
      `${what.slice(0, 90).padEnd(90)} ${median(times[index] ?? [])
        .toFixed(3)
        .padStart(7)} ms`,
    );
  }
}
