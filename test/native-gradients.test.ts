import { describe, expect, it } from 'vitest';
import { NCHWC_FILTER } from '../core/autodiff/native-ops.ts';
import type { NativeChoices } from '../core/autodiff/rules/native.ts';
import { INPUT_NAME } from '../core/contract.ts';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import { NCHWC_DOMAIN } from '../core/training/nchwc-convs.ts';
import { sgd } from '../core/training/optim/index.ts';
import { buildGradientGraph, buildTrainingGraph, LABELS_NAME } from '../core/training/training-graph.ts';
import { nativeKernels } from '../node/native-kernels.ts';
import { nchwcBlockSize } from '../node/nchwc.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { fixtureBatch, fixtureWeights } from './helpers/fixture-data.ts';
import { sameWeightsAsFirst } from './helpers/same-weights.ts';
import { expectThreePytorchSteps, plainSgdCases } from './helpers/torch-training.ts';

const kernels = nativeKernels();
const ALL: NativeChoices = { convInputs: () => true, maxPools: () => true };
const POOLS: NativeChoices = { convInputs: () => false, maxPools: () => true };
const MODELS: ModelName[] = ['cnn', 'cnn3', 'resnet', 'inception', 'densenet', 'fast-cnn', 'cnn7'];

const block = await nchwcBlockSize();

describe('a gradient graph cut at its native nodes', () => {
  for (const [model, nchwcBlock] of MODELS.flatMap((m) => [
    [m, undefined] as const,
    ...(block ? [[m, block] as const] : []),
  ])) {
    const how = nchwcBlock ? `, NCHWc Convs (block ${nchwcBlock}) with their weights reordered natively` : '';
    it(`${model}${how}: every step reads only what the feeds and earlier steps made, and all outputs get made`, () => {
      const graph = buildGradientGraph(ZOO[model].build(), {
        externalConvWeights: () => true,
        nativeGradients: ALL,
        nchwcBlock,
      });
      const plan = graph.segments;
      expect(plan, 'some native node').toBeDefined();
      const known = new Set([
        INPUT_NAME,
        LABELS_NAME,
        ...graph.params.map((p) => p.name),
        ...graph.randomInputs.map((r) => r.name),
      ]);
      for (const step of plan?.steps ?? []) {
        const [reads, makes] =
          step.kind === 'graph' ? [step.inputs, step.outputs] : [step.node.input, step.node.output];
        for (const name of reads) expect(known.has(name), `${name} before it is made`).toBe(true);
        for (const name of makes) known.add(name);
      }
      for (const name of plan?.outputs ?? []) expect(known.has(name), `output ${name}`).toBe(true);
      expect(plan?.steps.filter((s) => s.kind === 'native').length).toBeGreaterThan(0);
      // The backward is one native chain after the forward's segment: every return to ORT is a session run
      // and a copy of its outputs (inception's joins and split were three ORT segments, cnn7's BatchNorms
      // and dropouts six, densenet's eight).
      expect(plan?.steps.filter((s) => s.kind === 'graph').length).toBe(1);
      // The weights' reorders run before that segment, one per NCHWc Conv, and ORT transposes nothing.
      const first = plan?.steps.findIndex((s) => s.kind === 'graph') ?? -1;
      const reorders = plan?.steps.filter((s) => s.kind === 'native' && s.node.op_type === NCHWC_FILTER) ?? [];
      expect(plan?.steps.slice(0, first)).toEqual(reorders);
      const convs = graph.model.graph?.node?.filter((n) => n.op_type === 'Conv' && n.domain === NCHWC_DOMAIN) ?? [];
      expect(reorders.length).toBe(convs.length);
      if (nchwcBlock) expect(convs.length).toBeGreaterThan(0);
      expect(graph.model.graph?.node?.some((n) => n.op_type === 'Transpose' && n.input[0]?.includes('weight'))).toBe(
        false,
      );
    });
  }
});

describe.skipIf(!kernels)('native chains in training steps', () => {
  const { images, labels } = fixtureBatch();
  // mlp has no Conv or pool to start a chain (test/native-linear-weights.test.ts trains it natively).
  for (const c of plainSgdCases().filter((k) => k.model !== 'mlp')) {
    for (const [what, choices, sessionThreads] of [
      ['every chain start native, sessions and kernels on 2 threads', ALL, 2],
      ['pools only', POOLS, 1],
    ] as const) {
      it(`${c.model}, ${what}: three SGD steps end at PyTorch's weights`, async () => {
        const module = ZOO[c.model].build();
        const trainer = await ParallelTrainer.create(module, {
          optimizer: sgd({ momentum: 0.5 }),
          workers: 1,
          sessionThreads,
          weights: fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params),
          nativeConvWeights: true,
          nativeGradients: choices,
        });
        try {
          await expectThreePytorchSteps(trainer, { images, labels }, c);
        } finally {
          await trainer.release();
        }
      });
    }
  }

  for (const model of ['cnn3', 'densenet', 'cnn7'] as const) {
    it(`${model}: two workers with micro-batches reach the pure-ORT graph's weights`, async () => {
      const n = 13;
      const check = sameWeightsAsFirst(4); // BatchNorm amplifies float32 rounding
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
          check(trainer.weights());
        } finally {
          await trainer.release();
        }
      }
    });
  }
});
