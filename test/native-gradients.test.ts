/**
 * Native chains in the gradient step (core/autodiff/rules/native.ts → core/training/segments.ts →
 * node/segmented-session.ts): the cut graph is well formed (every step's inputs exist when it runs), its
 * gradients equal the pure-ORT graph's (whose rules pass the float64 finite-difference checks), and three
 * SGD steps end at the PyTorch fixtures' weights — with every chain start native, and with pools only.
 * Skipped where the addon isn't built, except the plan's shape.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { NativeChoices } from '../core/autodiff/rules/native.ts';
import { INPUT_NAME } from '../core/contract.ts';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { sgd } from '../core/training/optim/index.ts';
import { buildGradientGraph, buildTrainingGraph, LABELS_NAME } from '../core/training/training-graph.ts';
import { nativeKernels } from '../node/native-kernels.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { fixtureBatch, fixtureWeights } from './helpers/fixture-data.ts';

const kernels = nativeKernels();
const ALL: NativeChoices = { convInputs: () => true, maxPools: () => true };
const POOLS: NativeChoices = { convInputs: () => false, maxPools: () => true };
const MODELS: ModelName[] = ['cnn', 'cnn3', 'resnet', 'inception', 'densenet'];

describe('a gradient graph cut at its native nodes', () => {
  for (const model of MODELS) {
    it(`${model}: every step reads only what the feeds and earlier steps made, and all outputs get made`, () => {
      const graph = buildGradientGraph(ZOO[model].build(), { externalConvWeights: () => true, nativeGradients: ALL });
      const plan = graph.segments;
      expect(plan, 'some native node').toBeDefined();
      const known = new Set([INPUT_NAME, LABELS_NAME, ...graph.params.map((p) => p.name)]);
      for (const step of plan?.steps ?? []) {
        const [reads, makes] =
          step.kind === 'graph' ? [step.inputs, step.outputs] : [step.node.input, step.node.output];
        for (const name of reads) expect(known.has(name), `${name} before it is made`).toBe(true);
        for (const name of makes) known.add(name);
      }
      for (const name of plan?.outputs ?? []) expect(known.has(name), `output ${name}`).toBe(true);
      expect(plan?.steps.filter((s) => s.kind === 'native').length).toBeGreaterThan(0);
    });
  }
});

const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch-training.json', import.meta.url), 'utf8')) as {
  cases: {
    model: ModelName;
    optimizer: string;
    labelSmoothing: number;
    losses: number[];
    after: Record<string, { norm: number; samples: [number, number][]; float32Error: number }>;
  }[];
};

describe.skipIf(!kernels)('native chains in training steps', () => {
  const { images, labels } = fixtureBatch();
  for (const c of fixture.cases.filter((k) => k.optimizer === 'sgd' && !k.labelSmoothing && k.model !== 'densenet')) {
    for (const [what, choices] of [
      ['every chain start native', ALL],
      ['pools only', POOLS],
    ] as const) {
      it(`${c.model}, ${what}: three SGD steps end at PyTorch's weights`, async () => {
        const module = ZOO[c.model].build();
        const trainer = await ParallelTrainer.create(module, {
          optimizer: sgd({ momentum: 0.5 }),
          workers: 1,
          weights: fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params),
          nativeConvWeights: true,
          nativeGradients: choices,
        });
        try {
          for (let s = 0; s < 3; s++) {
            const { loss } = await trainer.step(images, labels, 0.01);
            expect(Math.abs(loss - (c.losses[s] as number)) / (c.losses[s] as number)).toBeLessThan(1e-4);
          }
          const after = trainer.weights();
          for (const [name, golden] of Object.entries(c.after)) {
            const ours = after.get(name) as Float32Array;
            const rms = golden.norm / Math.sqrt(ours.length);
            const tolerance = Math.max(1e-4, 3 * golden.float32Error);
            for (const [i, value] of golden.samples) {
              const error = Math.abs((ours[i] as number) - value) / Math.max(Math.abs(value), rms, 1e-12);
              expect(error, `${name}[${i}] after 3 steps`).toBeLessThan(tolerance);
            }
          }
        } finally {
          await trainer.release();
        }
      });
    }
  }

  for (const model of ['cnn3', 'densenet'] as const) {
    it(`${model}: two workers with micro-batches reach the pure-ORT graph's weights`, async () => {
      const n = 13;
      const weights = new Map<string, Float32Array>();
      for (const native of [false, true]) {
        const trainer = await ParallelTrainer.create(ZOO[model].build(), {
          optimizer: sgd({ momentum: 0.5 }),
          seed: 1,
          workers: 2,
          microBatch: 5,
          nativeConvWeights: native,
          nativeGradients: native ? ALL : undefined,
        });
        try {
          const batch = fixtureBatch(n);
          for (let s = 0; s < 2; s++) await trainer.step(batch.images, batch.labels, 0.05);
          for (const [name, value] of trainer.weights()) {
            const other = weights.get(name);
            if (!other) weights.set(name, value);
            else for (let i = 0; i < value.length; i++) expect(value[i], name).toBeCloseTo(other[i] as number, 4); // BatchNorm amplifies float32 rounding
          }
        } finally {
          await trainer.release();
        }
      }
    });
  }
});
