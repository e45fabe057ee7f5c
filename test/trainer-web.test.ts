/**
 * One code path: the same Trainer (graph builder, gradient rules, optimizers) on onnxruntime-web's wasm
 * backend, which runs in Node too, takes the same steps as on onnxruntime-node — same seed, same MNIST
 * batches → the same losses and weights to float tolerance. The browser's /train page runs exactly this.
 */
import * as ortWeb from 'onnxruntime-web';
import { describe, expect, it } from 'vitest';
import { type ModelName, ZOO } from '../core/model/zoo/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import { Rng } from '../core/random.ts';
import { BatchStream } from '../core/training/batches.ts';
import { optimizerFor } from '../core/training/optim/from-config.ts';
import { RECIPES } from '../core/training/recipes.ts';
import { learningRate } from '../core/training/schedule.ts';
import { Trainer } from '../core/training/trainer-core.ts';
import { nodeRuntime } from '../node/execution.ts';
import { loadMnist, take } from '../node/mnist.ts';
import { webRuntime } from '../web-demo/src/web-runtime.ts';

ortWeb.env.wasm.numThreads = 1;
const web = webRuntime(ortWeb);
const STEPS = 6;
const mnist = loadMnist('train');

async function firstSteps(runtime: OrtRuntime, model: ModelName, recipe: 'tutorial' | 'fast') {
  // At the /train page's peak lr (presets.ts: 0.01), not the CLI fast recipe's 0.02: Adam turns the two
  // runtimes' rounding differences into steps of the lr's size, and at 0.02 step 6 drifts past the bound.
  const config = { ...RECIPES[recipe].config, model, ...(recipe === 'fast' && { lr: 0.01 }) };
  const data = take(await mnist, STEPS * config.batchSize);
  const trainer = await Trainer.create(ZOO[model].build(), {
    runtime,
    optimizer: optimizerFor(config),
    seed: 3,
  });
  const stream = new BatchStream(data, config.batchSize, new Rng(3));
  const losses: number[] = [];
  for (const batch of stream.epoch()) {
    const lr = learningRate(config.schedule, config.lr, trainer.steps, STEPS);
    losses.push((await trainer.step(batch.images, batch.labels, lr)).loss);
  }
  const weights = trainer.weights();
  await trainer.release();
  return { losses, weights, provider: trainer.provider };
}

describe('the Trainer on onnxruntime-web (wasm) matches onnxruntime-node', () => {
  for (const [model, recipe] of [
    ['cnn', 'tutorial'],
    ['fast-cnn', 'fast'],
  ] as const) {
    it(`${model}, ${recipe} recipe: first ${STEPS} losses and the weights after them`, async () => {
      const a = await firstSteps(nodeRuntime, model, recipe);
      const b = await firstSteps(web, model, recipe);
      expect(a.provider).toBe('cpu');
      expect(b.provider).toBe('wasm');
      expect(b.losses).toHaveLength(STEPS);
      // The loss must move (a test that could fail), and both runtimes must see the same trajectory.
      expect(Math.abs((a.losses.at(-1) as number) - (a.losses[0] as number))).toBeGreaterThan(1e-3);
      a.losses.forEach((loss, i) => {
        expect(Math.abs(loss - (b.losses[i] as number)), `step ${i + 1}`).toBeLessThan(1e-4 * Math.max(1, loss));
      });
      let maxDiff = 0;
      for (const [name, values] of a.weights) {
        const other = b.weights.get(name) as Float32Array;
        for (let i = 0; i < values.length; i++)
          maxDiff = Math.max(maxDiff, Math.abs((values[i] as number) - (other[i] as number)));
      }
      expect(maxDiff).toBeLessThan(1e-4);
    });
  }
});
