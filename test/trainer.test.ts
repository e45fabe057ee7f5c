/** The Trainer API: learning, evaluation, exact resume, devices, and clear errors. */
import { describe, expect, it } from 'vitest';
import { composite, dropout, F, linear, type Module } from '../core/model/layers/index.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import { adamw, sgd } from '../core/training/optim/index.ts';
import { buildTrainingGraph } from '../core/training/training-graph.ts';
import { DeviceUnavailableError, nodeRuntime } from '../node/execution.ts';
import { createTrainer } from '../train/parallel/create-trainer.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { createNodeTrainer, type Trainer } from '../train/trainer.ts';
import { syntheticDigits } from './helpers/synthetic.ts';

const BATCH = 32;

async function trainSteps(
  trainer: Trainer,
  data: { images: Float32Array; labels: number[] },
  steps: number,
  lr: number,
) {
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const start = (s * BATCH) % data.labels.length;
    const images = data.images.subarray(start * 784, (start + BATCH) * 784);
    losses.push((await trainer.step(images, data.labels.slice(start, start + BATCH), lr)).loss);
  }
  return losses;
}

describe('Trainer', () => {
  const train = syntheticDigits(640, 1);
  const test = syntheticDigits(300, 2);

  it('learns: the simple CNN goes from chance to > 90% on held-out synthetic digits', async () => {
    const trainer = await createNodeTrainer(ZOO.cnn.build(), { optimizer: sgd({ momentum: 0.5 }), seed: 0 });
    const before = await trainer.evaluate(test.images, test.labels);
    await trainSteps(trainer, train, 120, 0.05);
    const after = await trainer.evaluate(test.images, test.labels);
    expect(before.accuracy).toBeLessThan(30);
    expect(after.accuracy).toBeGreaterThan(90);
    expect(after.loss).toBeLessThan(before.loss);
    expect(after.total).toBe(300);
    await trainer.release();
  });

  it('evaluates BatchNorm with its running statistics (DenseNet, AdamW)', async () => {
    const trainer = await createNodeTrainer(ZOO.densenet.build(), { optimizer: adamw({ weightDecay: 1e-4 }), seed: 0 });
    await trainSteps(trainer, train, 40, 3e-3);
    const weights = trainer.weights();
    expect(Array.from(weights.get('norm0.running_var') as Float32Array).some((v) => Math.abs(v - 1) > 1e-3)).toBe(true);
    expect((await trainer.evaluate(test.images, test.labels)).accuracy).toBeGreaterThan(60);
    await trainer.release();
  });

  it('resumes exactly: state() then restore() continues with the same losses, Adam step count and dropout masks', async () => {
    const net = (): Module =>
      composite('Net', { fc1: linear(784, 32), drop: dropout(0.3), fc2: linear(32, 10) }, (m, x, ctx) =>
        m.fc2(m.drop(F.relu(ctx, m.fc1(F.flatten(ctx, x))))),
      );
    const options = { optimizer: adamw(), seed: 3 };
    const straight = await createNodeTrainer(net(), options);
    const expected = await trainSteps(straight, train, 10, 1e-3);

    const first = await createNodeTrainer(net(), options);
    await trainSteps(first, train, 5, 1e-3);
    const snapshot = first.state();
    const resumed = await createNodeTrainer(net(), { ...options, seed: 99 });
    resumed.restore(snapshot);
    expect(resumed.steps).toBe(5);
    const rest: number[] = [];
    for (let s = 5; s < 10; s++) {
      const start = (s * BATCH) % train.labels.length;
      rest.push(
        (
          await resumed.step(
            train.images.subarray(start * 784, (start + BATCH) * 784),
            train.labels.slice(start, start + BATCH),
            1e-3,
          )
        ).loss,
      );
    }
    expect(rest).toEqual(expected.slice(5));
  });

  it('refuses labels outside 0..9 and mismatched batches', async () => {
    const trainer = await createNodeTrainer(ZOO.cnn.build(), { optimizer: sgd() });
    const images = new Float32Array(2 * 784);
    await expect(trainer.step(images, [1, 10], 0.1)).rejects.toThrow('label 10 at 1 is not a class in 0..9');
    await expect(trainer.step(images, [1], 0.1)).rejects.toThrow('batch has 1 labels but 2 images');
  });

  it('names the op and node when a graph uses an op without a gradient rule', () => {
    const tanhNet: Module = composite('Net', { fc1: linear(784, 16), fc2: linear(16, 10) }, (m, x, ctx) => {
      const h = m.fc1(F.flatten(ctx, x));
      return m.fc2(ctx.value(ctx.graph.op('Tanh', [h.name], {}, { name: 'my_tanh' }), h.shape));
    });
    expect(() => buildTrainingGraph(tanhNet, { optimizer: sgd() })).toThrow(
      /no gradient rule for op 'Tanh' \(node 'my_tanh'\)/,
    );
  });

  it('explains a missing CUDA provider in one line, and auto falls back to the CPU', async () => {
    const error = await createNodeTrainer(ZOO.cnn.build(), { optimizer: sgd(), device: 'cuda' }).catch((e) => e);
    expect(error).toBeInstanceOf(DeviceUnavailableError);
    expect(error.message).toMatch(/^cuda is not available: .*ONNXRUNTIME_NODE_INSTALL=cuda12/);
    expect(error.message).not.toContain('\n');
    const notices: string[] = [];
    const trainer = await createNodeTrainer(ZOO.cnn.build(), {
      optimizer: sgd(),
      device: 'auto',
      onNotice: (m) => notices.push(m),
    });
    expect(trainer.provider).toBe('cpu');
    expect(notices).toEqual([expect.stringMatching(/^device auto: using the CPU \(cuda is not available/)]);
    // …and builds the CPU's step, not a graph for neither: the same losses, to the bit, as 'cpu'.
    const cpu = await createNodeTrainer(ZOO.cnn.build(), { optimizer: sgd(), device: 'cpu' });
    const data = syntheticDigits(3 * BATCH, 4);
    expect(await trainSteps(trainer, data, 3, 0.05)).toEqual(await trainSteps(cpu, data, 3, 0.05));
    await Promise.all([trainer.release(), cpu.release()]);
  });

  it("leaves 'auto' to a caller's own runtime (only onnxruntime-node's is probed)", async () => {
    const asked: (string | undefined)[] = [];
    const runtime: OrtRuntime = {
      Tensor: nodeRuntime.Tensor,
      createSession(model, settings) {
        asked.push(settings.device);
        return nodeRuntime.createSession(model, settings);
      },
    };
    const trainer = await createTrainer(ZOO.cnn.build(), { optimizer: sgd(), device: 'auto', runtime, threads: 1 });
    expect(asked).toEqual(['auto']);
    await trainer.release();
  });

  it("createTrainer resolves device 'auto' before choosing how to run: on the CPU, workers", async () => {
    const trainer = await createTrainer(ZOO.cnn.build(), { optimizer: sgd(), device: 'auto', threads: 2 });
    expect(trainer).toBeInstanceOf(ParallelTrainer);
    expect(trainer.provider).toBe('cpu');
    await trainer.release();
  });
});
