/**
 * Where an epoch's time goes with data-parallel workers: each step's wall time beside each participant's
 * compute (its slice: the gradient step and the native weight gradients), the slower participant's, and
 * what the exchange around them adds (posting, the barrier, the update, the reply). A development tool, not
 * a benchmark: how docs/benchmarks.md's epoch breakdown was measured.
 *
 *   npx tsx --single-threaded-gc --initial-old-space-size=64 bench/epoch-probe.ts --model resnet [--threads 2] [--steps 900]
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { BatchStream } from '../core/training/batches.ts';
import { sgd } from '../core/training/optim/index.ts';
import { loadMnist } from '../node/mnist.ts';
import { defaultCacheDir } from '../train/autotune/cache.ts';
import { createTrainer } from '../train/parallel/create-trainer.ts';
import { median } from './stats.ts';

const opts = new Command()
  .option('--model <name>', 'zoo model', 'resnet')
  .option('--threads <n>', 'threads (workers, as train runs BatchNorm-free models)', '2')
  .option('--steps <n>', 'steps of batch 64 (at most one epoch)', '900')
  .parse()
  .opts<{ model: ModelName; threads: string; steps: string }>();

const compute: number[][] = Array.from({ length: Number(opts.threads) }, () => []);
const trainer = await createTrainer(ZOO[opts.model].build(), {
  optimizer: sgd({ momentum: 0.5 }),
  threads: Number(opts.threads),
  autotune: { cacheDir: defaultCacheDir() },
  batchSize: 64,
  onCompute: (w, ms) => compute[w]?.push(ms),
});
const stream = new BatchStream(await loadMnist('train'), 64, new Rng(0));
const walls: number[] = [];
const started = performance.now();
for (const batch of stream.epoch({ reuse: true })) {
  const t = performance.now();
  await trainer.step(batch.images, batch.labels, 0.01);
  walls.push(performance.now() - t);
  if (walls.length >= Number(opts.steps)) break;
}
const seconds = (performance.now() - started) / 1000;
await trainer.release();

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const p90 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * 0.9)] ?? 0;
const ms = (x: number) => x.toFixed(2);
console.log(
  `${opts.model}, ${opts.threads} threads: ${walls.length} steps in ${seconds.toFixed(2)} s, ` +
    `${Math.round((walls.length * 64) / seconds)} images/s; load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
);
console.log(`step wall: median ${ms(median(walls))}, mean ${ms(mean(walls))}, p90 ${ms(p90(walls))} ms`);
for (const [w, c] of compute.entries())
  console.log(`participant ${w} compute: median ${ms(median(c))}, mean ${ms(mean(c))}, p90 ${ms(p90(c))} ms`);
if (compute.length > 1) {
  const slowest = walls.map((_, k) => Math.max(...compute.map((c) => c[k] ?? 0)));
  const exchange = walls.map((w, k) => w - (slowest[k] as number));
  console.log(
    `slower participant: mean ${ms(mean(slowest))} ms; exchange: median ${ms(median(exchange))}, mean ${ms(mean(exchange))} ms`,
  );
}
