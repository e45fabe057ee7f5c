/**
 * Our training graph against PyTorch (fixtures written by test/fixtures/make-torch-fixtures.py):
 * same initial weights and batch → the loss, every parameter gradient, three optimizer steps and the
 * weights (and BatchNorm running statistics) after them. The golden numbers are PyTorch in float64;
 * we must be within 1e-4 relative — or, where PyTorch's own float32 run strays further than that
 * (ill-conditioned tensors behind BatchNorm), within three times PyTorch's float32 error.
 */
import { readFileSync } from 'node:fs';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ZOO } from '../core/model/zoo/index.ts';
import { adam, adamw, type Optimizer, sgd } from '../core/training/optim/index.ts';
import { buildTrainingGraph, gradName } from '../core/training/training-graph.ts';
import { encodeModel } from '../onnx/codec.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import { fixtureBatch, fixtureWeights } from './helpers/fixture-data.ts';

interface Summary {
  shape: number[];
  norm: number;
  samples: [number, number][];
  float32Error: number;
}
interface Case {
  model: keyof typeof ZOO;
  optimizer: string;
  labelSmoothing: number;
  losses: number[];
  lossFloat32Error: number;
  gradients: Record<string, Summary>;
  after: Record<string, Summary>;
}

const fixture = JSON.parse(readFileSync(new URL('./fixtures/torch-training.json', import.meta.url), 'utf8')) as {
  torch: string;
  cases: Case[];
};

const OPTIMIZERS: Record<string, { optimizer: () => Optimizer; lr: number }> = {
  sgd: { optimizer: () => sgd({ momentum: 0.5 }), lr: 0.01 },
  'sgd-nesterov-wd': { optimizer: () => sgd({ momentum: 0.9, nesterov: true, weightDecay: 1e-3 }), lr: 0.05 },
  adam: { optimizer: () => adam({ weightDecay: 1e-4 }), lr: 1e-3 },
  adamw: { optimizer: () => adamw({ weightDecay: 0.01 }), lr: 1e-3 },
};

const TOLERANCE = 1e-4;
const allowed = (s: { float32Error: number }) => Math.max(TOLERANCE, 3 * s.float32Error);

/** Relative error of each sampled element, against max(|torch value|, the tensor's RMS). */
function worstError(ours: Float32Array, theirs: Summary): number {
  expect(ours.length).toBe(theirs.shape.reduce((a, b) => a * b, 1));
  const rms = theirs.norm / Math.sqrt(ours.length);
  let worst = 0;
  for (const [i, value] of theirs.samples) {
    worst = Math.max(worst, Math.abs((ours[i] as number) - value) / Math.max(Math.abs(value), rms, 1e-12));
  }
  const norm = Math.sqrt(ours.reduce((s, v) => s + v * v, 0));
  return Math.max(worst, Math.abs(norm - theirs.norm) / Math.max(theirs.norm, 1e-12));
}

describe(`PyTorch ${fixture.torch} parity`, () => {
  const { images, labels } = fixtureBatch();

  for (const c of fixture.cases) {
    const title = `${c.model} / ${c.optimizer}${c.labelSmoothing ? ` / label smoothing ${c.labelSmoothing}` : ''}`;
    const { optimizer, lr } = OPTIMIZERS[c.optimizer] as (typeof OPTIMIZERS)[string];

    it(`${title}: loss and every parameter gradient`, async () => {
      const graph = buildTrainingGraph(ZOO[c.model].build(), {
        optimizer: optimizer(),
        labelSmoothing: c.labelSmoothing,
        exposeGradients: true,
      });
      const weights = fixtureWeights(graph.params);
      const session = await ort.InferenceSession.create(encodeModel(graph.model), { intraOpNumThreads: 1 });
      const feeds: Record<string, ort.Tensor> = {
        input: new ort.Tensor('float32', images, [labels.length, 1, 28, 28]),
        labels: new ort.Tensor('int64', BigInt64Array.from(labels.map(BigInt)), [labels.length]),
        lr: new ort.Tensor('float32', Float32Array.of(lr), []),
        step: new ort.Tensor('float32', Float32Array.of(1), []),
      };
      for (const t of graph.carried) {
        feeds[t.name] = new ort.Tensor(
          'float32',
          weights.get(t.name) ?? new Float32Array(t.shape.reduce((a, b) => a * b, 1)),
          t.shape,
        );
      }
      if (!graph.usesStep) delete feeds.step;
      const out = await session.run(feeds);
      await session.release();
      const loss = (out.loss as ort.Tensor).data[0] as number;
      const lossTolerance = allowed({ float32Error: c.lossFloat32Error });
      expect(Math.abs(loss - (c.losses[0] as number)) / (c.losses[0] as number)).toBeLessThan(lossTolerance);
      const names = Object.keys(c.gradients);
      expect(names.sort()).toEqual(
        graph.params
          .filter((p) => p.trainable)
          .map((p) => p.name)
          .sort(),
      );
      for (const name of names) {
        const grad = (out[gradName(name)] as ort.Tensor).data as Float32Array;
        const golden = c.gradients[name] as Summary;
        expect(worstError(grad, golden), `gradient of ${name}`).toBeLessThan(allowed(golden));
      }
    });

    it(`${title}: three steps, then the weights and running statistics`, async () => {
      const module = ZOO[c.model].build();
      const trainer = await createNodeTrainer(module, {
        optimizer: optimizer(),
        labelSmoothing: c.labelSmoothing,
        weights: fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params),
      });
      const losses: number[] = [];
      for (let s = 0; s < 3; s++) losses.push((await trainer.step(images, labels, lr)).loss);
      losses.forEach((l, s) => {
        const relative = Math.abs(l - (c.losses[s] as number)) / (c.losses[s] as number);
        expect(relative, `loss of step ${s + 1}`).toBeLessThan(allowed({ float32Error: c.lossFloat32Error }));
      });
      const after = trainer.weights();
      expect([...after.keys()].sort()).toEqual(Object.keys(c.after).sort());
      for (const [name, summary] of Object.entries(c.after)) {
        expect(worstError(after.get(name) as Float32Array, summary), `${name} after 3 steps`).toBeLessThan(
          allowed(summary),
        );
      }
      await trainer.release();
    });
  }
});
