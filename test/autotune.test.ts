/** Per-shape autotuning: one measurement per Conv geometry, cached on disk by shape and ORT version. */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { CONV_WEIGHT_GRADIENTS } from '../core/autodiff/rules/conv-weight-gradient.ts';
import { CPU_MAX_POOL_GRADIENTS } from '../core/autodiff/rules/pooling.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { sgd } from '../core/training/optim/index.ts';
import { Trainer as SessionTrainer, Trainer } from '../core/training/trainer-core.ts';
import { nativeKernels } from '../node/native-kernels.ts';
import { autotuneRules } from '../train/autotune/autotune.ts';
import { CACHE_FILE } from '../train/autotune/cache.ts';
import { NATIVE_OR_ORT } from '../train/autotune/native-timing.ts';
import { createTrainer } from '../train/parallel/create-trainer.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import { syntheticDigits } from './helpers/synthetic.ts';

/** The addon the project builds (native/build.mjs), read here independently of node/native-kernels.ts. */
const NATIVE_ADDON = join(import.meta.dirname, '../native/build/Release/mnist_native.node');

const readCache = async (dir: string) =>
  JSON.parse(await readFile(join(dir, CACHE_FILE), 'utf8')) as { version: number; choices: Record<string, string> };

describe('autotune', () => {
  it('measures each Conv geometry once, caches the choice by shape and ORT version, and reuses it', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'autotune-'));
    const notices: string[] = [];
    const first = await autotuneRules(ZOO.cnn.build(), { batch: 8, cacheDir, onNotice: (m) => notices.push(m) });
    // The simple CNN has two convolutions and two 2×2 max-pools, all of different shapes.
    expect(first.choices.size).toBe(4);
    expect(notices).toHaveLength(4);
    const cache = await readCache(cacheDir);
    expect(Object.keys(cache.choices)).toHaveLength(4);
    for (const [key, choice] of Object.entries(cache.choices)) {
      expect(key).toContain(`ort ${ort.env.versions.node}`);
      expect(key).toContain('batch 8');
      const allowed: readonly string[] = key.includes('conv') ? CONV_WEIGHT_GRADIENTS : CPU_MAX_POOL_GRADIENTS;
      expect(allowed).toContain(choice);
    }

    // Cached: nothing measured again; a planted choice is what gets built.
    const key = Object.keys(cache.choices).find((k) => k.includes('conv-weight-gradient')) as string;
    const planted = cache.choices[key] === 'im2col' ? 'im2col-t' : 'im2col';
    await writeFile(
      join(cacheDir, CACHE_FILE),
      JSON.stringify({ ...cache, choices: { ...cache.choices, [key]: planted } }),
    );
    const again: string[] = [];
    const second = await autotuneRules(ZOO.cnn.build(), { batch: 8, cacheDir, onNotice: (m) => again.push(m) });
    expect(again).toEqual([]);
    expect(second.choices.get(key)).toBe(planted);

    // Another batch size is another shape.
    await autotuneRules(ZOO.cnn.build(), { batch: 16, cacheDir });
    expect(Object.keys((await readCache(cacheDir)).choices)).toHaveLength(8);
  }, 60_000);

  it.skipIf(!nativeKernels())(
    'with the native step, also chooses native or ORT per Conv input gradient and max-pool, cached like the rest',
    async () => {
      const cacheDir = await mkdtemp(join(tmpdir(), 'autotune-'));
      const notices: string[] = [];
      const first = await autotuneRules(ZOO.cnn.build(), {
        batch: 8,
        cacheDir,
        native: true,
        onNotice: (m) => notices.push(m),
      });
      // cnn: conv2's input gradient (conv1's input is the images) and the two pools, besides the four above.
      const native = [...first.choices].filter(([key]) => key.includes('native step'));
      expect(native.map(([key]) => key.split(' | ')[1])).toEqual([
        'max-pool-gradient in native step',
        'conv-input-gradient in native step',
        'max-pool-gradient in native step',
      ]);
      for (const [, choice] of native) expect(NATIVE_OR_ORT).toContain(choice);
      // Keyed by the addon's own bytes: a rebuilt addon's kernels are timed again, not trusted.
      const build = createHash('sha256').update(readFileSync(NATIVE_ADDON)).digest('hex').slice(0, 12);
      for (const [key] of native) expect(key).toContain(`native build ${build}`);
      // The first pool is timed only if conv2's input gradient stayed in ORT: else the chain reaches it anyway.
      const convPick = notices.find((m) => m.includes('input gradient, native or ORT'));
      const allNative = notices.filter((m) => m.includes('every native start beats'));
      expect(notices.length - allNative.length).toBe(convPick?.includes('→ native') ? 6 : 7);
      // Picks that leave some start in ORT are checked once against every start native; when that wins, all are.
      expect(allNative.length).toBeLessThanOrEqual(1);
      if (allNative.length === 1) for (const [, choice] of native) expect(choice).toBe('native');
      expect(first.nativeGradients).toBeDefined();
      const again: string[] = [];
      await autotuneRules(ZOO.cnn.build(), { batch: 8, cacheDir, native: true, onNotice: (m) => again.push(m) });
      expect(again).toEqual([]);
    },
    120_000,
  );

  it('rebuilds a corrupt cache instead of failing', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'autotune-'));
    await writeFile(join(cacheDir, CACHE_FILE), '{ not json');
    const { choices } = await autotuneRules(ZOO.cnn.build(), { batch: 4, cacheDir });
    expect(choices.size).toBe(4);
    expect((await readCache(cacheDir)).version).toBe(4);
  }, 60_000);

  it('an autotuned worker step trains like the usual single-session step (resnet: convs and max-pools)', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'autotune-'));
    const data = syntheticDigits(64, 3);
    const options = { optimizer: sgd({ momentum: 0.5 }), seed: 0 };
    const tuned = await createTrainer(ZOO.resnet.build(), {
      ...options,
      threads: 2,
      parallelism: 'workers',
      autotune: { cacheDir },
      batchSize: 64,
    });
    const usual = await createNodeTrainer(ZOO.resnet.build(), options);
    try {
      for (let s = 0; s < 2; s++) {
        const a = await tuned.step(data.images, data.labels, 0.05);
        const b = await usual.step(data.images, data.labels, 0.05);
        expect(a.loss).toBeCloseTo(b.loss, 4);
      }
      const [w, u] = [tuned.weights(), usual.weights()];
      let max = 0;
      for (const [name, x] of u) {
        const y = w.get(name) as Float32Array;
        for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs((x[i] as number) - (y[i] as number)));
      }
      expect(max).toBeLessThan(1e-4);
      expect(tuned).not.toBeInstanceOf(Trainer);
    } finally {
      await Promise.all([tuned.release(), usual.release()]);
    }
  }, 90_000);

  it('tunes a single session too: the cached choice for a shape is what its step graph is built with', async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'autotune-'));
    await autotuneRules(ZOO.cnn.build(), { batch: 16, cacheDir });
    // Plant first-max for every max-pool shape of batch 16, then the usual routing, and look at the graph.
    const cache = await readCache(cacheDir);
    const plant = async (routing: string) => {
      const choices = Object.fromEntries(
        Object.entries(cache.choices).map(([k, v]) => [k, k.includes('max-pool') ? routing : v]),
      );
      await writeFile(join(cacheDir, CACHE_FILE), JSON.stringify({ ...cache, choices }));
    };
    const opsOf = async (routing: string) => {
      await plant(routing);
      // native: false keeps the one-session step (with the native kernel, one thread runs the split step).
      const options = { optimizer: sgd(), threads: 1, autotune: { cacheDir }, batchSize: 16, native: false };
      const trainer = await createTrainer(ZOO.cnn.build(), options);
      await trainer.release();
      expect(trainer).toBeInstanceOf(SessionTrainer);
      const nodes = (trainer as SessionTrainer).graph.model.graph?.node ?? [];
      return nodes.map((n) => `${n.op_type}/${n.output.length}`);
    };
    const argMaxes = (ops: string[]) => ops.filter((op) => op.startsWith('ArgMax')).length;
    const [firstMax, unpool] = [await opsOf('first-max'), await opsOf('unpool')];
    expect(firstMax).not.toContain('MaxPool/2'); // no Indices output
    expect(unpool.filter((op) => op === 'MaxPool/2')).toHaveLength(2);
    expect(argMaxes(firstMax)).toBe(argMaxes(unpool) + 2); // one per max-pool (the loss's accuracy has one)
  }, 60_000);
});
