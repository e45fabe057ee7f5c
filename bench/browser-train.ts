/**
 * Browser training throughput: the /train page in headless Debian Chromium (onnxruntime-web wasm with 1
 * thread and with all cores; WebGPU only when Chromium finds a real, non-fallback adapter) beside the CLI's
 * Trainer on onnxruntime-node, on the same machine, model, recipe, batch size and MNIST images. Both
 * time one epoch from its first step (session creation excluded). The CLI writes results-browser.{md,json}.
 */

import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { BatchStream } from '../core/training/batches.ts';
import { optimizerFor } from '../core/training/optim/from-config.ts';
import { RECIPES } from '../core/training/recipes.ts';
import { loadMnist, take } from '../node/mnist.ts';
import { startServer } from '../serve/server.ts';
import { launch } from '../testkit/chromium.ts';
import { buildWebDemo } from '../testkit/web-demo-build.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import type { BenchReport } from './report.ts';

export interface BrowserBenchOptions {
  models: ModelName[];
  /** Training images per measured epoch. */
  images: number;
  batch: number;
}

export interface BrowserBenchRow {
  model: string;
  runtime: string;
  threads: number;
  imagesPerSecond: number;
}

/** One epoch of the tutorial recipe on the CLI's Trainer (onnxruntime-node). */
async function cliEpoch(model: ModelName, threads: number, options: BrowserBenchOptions): Promise<number> {
  const config = { ...RECIPES.tutorial.config, model, batchSize: options.batch };
  const data = take(await loadMnist('train'), options.images);
  const trainer = await createNodeTrainer(ZOO[model].build(), { optimizer: optimizerFor(config), threads, seed: 0 });
  try {
    const stream = new BatchStream(data, options.batch, new Rng(0));
    const start = performance.now();
    for (const b of stream.epoch()) await trainer.step(b.images, b.labels, config.lr);
    return data.count / ((performance.now() - start) / 1000);
  } finally {
    await trainer.release();
  }
}

interface PageState {
  done: boolean;
  error?: string;
  backend?: string;
  epochs: { imagesPerSecond: number }[];
}

export async function browserTrainingBench(options: BrowserBenchOptions): Promise<BrowserBenchRow[]> {
  const tmp = mkdtempSync(join(tmpdir(), 'bench-browser-'));
  const rows: BrowserBenchRow[] = [];
  try {
    const webRoot = join(tmp, 'web');
    await buildWebDemo(webRoot);
    mkdirSync(join(tmp, 'models'));
    const server = await startServer({ models: join(tmp, 'models'), port: 0, webRoot });
    const browser = await launch(['--enable-unsafe-webgpu']);
    try {
      const page = await browser.newPage();
      await page.goto(`${server.url}/train`);
      const adapter = await page.evaluate(async () => {
        const gpu = (
          navigator as unknown as {
            gpu?: { requestAdapter(): Promise<{ info?: { isFallbackAdapter?: boolean } } | null> };
          }
        ).gpu;
        const a = await gpu?.requestAdapter();
        return a ? (a.info?.isFallbackAdapter ? 'fallback' : 'real') : 'none';
      });
      const cores = await page.evaluate(() => navigator.hardwareConcurrency);
      await page.close();
      const configs: { ep: 'wasm' | 'webgpu'; threads: number }[] = [
        { ep: 'wasm', threads: 1 },
        ...(cores > 1 ? [{ ep: 'wasm' as const, threads: cores }] : []),
        ...(adapter === 'real' ? [{ ep: 'webgpu' as const, threads: 1 }] : []),
      ];
      if (adapter !== 'real')
        console.log(
          `WebGPU not measured: Chromium's adapter is ${adapter === 'none' ? 'missing' : 'a software fallback'}`,
        );
      for (const model of options.models) {
        for (const threads of [1, Math.min(2, cpus().length)].filter((t, i, a) => a.indexOf(t) === i)) {
          const imagesPerSecond = await cliEpoch(model, threads, options);
          rows.push({ model, runtime: 'CLI: onnxruntime-node (CPU)', threads, imagesPerSecond });
          console.log(`${model.padEnd(10)} CLI ${threads} thread(s): ${imagesPerSecond.toFixed(0)} img/s`);
        }
        for (const { ep, threads } of configs) {
          const p = await browser.newPage();
          const query = `model=${model}&recipe=tutorial&epochs=1&train=${options.images}&batch=${options.batch}&lr=0.01&test=100&ep=${ep}&threads=${threads}`;
          await p.goto(`${server.url}/train?${query}`);
          await p.click('#train');
          await p.waitForFunction(
            () => {
              const s = (window as unknown as { trainPage: PageState }).trainPage;
              return s.done || s.error;
            },
            undefined,
            { timeout: 600_000 },
          );
          const state = await p.evaluate(() => (window as unknown as { trainPage: PageState }).trainPage);
          await p.close();
          if (state.error) throw new Error(`browser ${ep} ${threads}: ${state.error}`);
          const imagesPerSecond = state.epochs[0]?.imagesPerSecond ?? Number.NaN;
          const runtime = ep === 'webgpu' ? 'browser: onnxruntime-web WebGPU' : 'browser: onnxruntime-web wasm (SIMD)';
          rows.push({ model, runtime, threads, imagesPerSecond });
          console.log(`${model.padEnd(10)} browser ${ep} ${threads} thread(s): ${imagesPerSecond.toFixed(0)} img/s`);
        }
      }
    } finally {
      await browser.close();
      await server.close();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return rows;
}

export async function benchBrowser(options: BrowserBenchOptions): Promise<BenchReport> {
  const rows = await browserTrainingBench(options);
  const markdown = [
    '# Training in the browser vs the CLI',
    '',
    `One epoch of the tutorial recipe (SGD, batch ${options.batch}) on the first ${options.images} MNIST training images, timed from the first step; Debian Chromium headless. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| model | runtime | threads | images/s |',
    '|---|---|---:|---:|',
    ...rows.map((r) => `| ${r.model} | ${r.runtime} | ${r.threads} | ${r.imagesPerSecond.toFixed(0)} |`),
    '',
  ].join('\n');
  return { kind: 'browser', markdown, json: { ...options, rows } };
}
