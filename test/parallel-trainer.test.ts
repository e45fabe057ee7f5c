/**
 * Data-parallel workers: a step split over worker threads (gradients summed by slice size, one optimizer
 * update) equals one session's step for BN-free models, and BatchNorm's statistics are per slice.
 */
import { describe, expect, it } from 'vitest';
import { composite, dropout, F, linear, type Module } from '../core/model/layers/index.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { adamw, sgd } from '../core/training/optim/index.ts';
import { nativeKernels } from '../node/native-kernels.ts';
import { SpeedEstimate, shares } from '../train/parallel/balance.ts';
import { createTrainer, describeParallelism } from '../train/parallel/create-trainer.ts';
import { microBatches, ParallelTrainer, shardRanges } from '../train/parallel/parallel-trainer.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import { syntheticDigits } from './helpers/synthetic.ts';

const PIXELS = 784;

function maxDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let max = 0;
  for (const [name, x] of a) {
    const y = b.get(name) as Float32Array;
    for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs((x[i] as number) - (y[i] as number)));
  }
  return max;
}

describe('work split', () => {
  it('deals a batch in near-equal shares, or by speed, every worker at least one image', () => {
    expect(shares(64, [1, 1])).toEqual([32, 32]);
    expect(shares(5, [1, 1])).toEqual([3, 2]);
    expect(shares(1, [1, 1, 1, 1])).toEqual([1, 0, 0, 0]);
    expect(shares(64, [0, 3])).toEqual([32, 32]); // a worker not measured yet: equal
    expect(shares(64, [3, 1])).toEqual([48, 16]);
    expect(shares(10, [1000, 1])).toEqual([9, 1]);
    for (const n of [1, 7, 63, 64, 65]) expect(shares(n, [2.5, 1.3, 0.7]).reduce((a, b) => a + b)).toBe(n);
  });

  it("cuts a worker's share into micro-batches and deals the flat parameters to contiguous shards", () => {
    expect(microBatches(32, 16)).toEqual([
      [0, 16],
      [16, 32],
    ]);
    expect(microBatches(31, 16).map(([a, b]) => b - a)).toEqual([16, 15]);
    expect(microBatches(0, 16)).toEqual([]);
    expect(shardRanges(10, 3)).toEqual([
      { start: 0, length: 4 },
      { start: 4, length: 3 },
      { start: 7, length: 3 },
    ]);
    expect(shardRanges(1, 2)).toEqual([
      { start: 0, length: 1 },
      { start: 1, length: 0 },
    ]);
  });

  it('measures speed as a moving average of images per millisecond', () => {
    const speeds = new SpeedEstimate(2, 0.5);
    speeds.observe(0, 32, 4);
    speeds.observe(0, 32, 2);
    expect(speeds.current).toEqual([12, 0]);
  });
});

describe('ParallelTrainer', () => {
  const data = syntheticDigits(192, 5);
  const batch = (s: number, n: number) => ({
    images: data.images.slice(s * PIXELS, (s + n) * PIXELS),
    labels: data.labels.slice(s, s + n),
  });

  it('takes the same 3 steps as one session for a BN-free model (cnn, SGD with momentum), and their states interchange', async () => {
    const options = { optimizer: sgd({ momentum: 0.5 }), seed: 0 };
    const single = await createNodeTrainer(ZOO.cnn.build(), options);
    const parallel = await ParallelTrainer.create(ZOO.cnn.build(), { ...options, workers: 2 });
    try {
      for (let s = 0; s < 3; s++) {
        const { images, labels } = batch(s * 64, 64);
        const a = await single.step(images, labels, 0.05);
        const b = await parallel.step(images, labels, 0.05);
        expect(b.correct).toBe(a.correct);
        expect(b.loss).toBeCloseTo(a.loss, 5);
      }
      expect(parallel.steps).toBe(3);
      expect(maxDifference(parallel.weights(), single.weights())).toBeLessThan(1e-5);
      // A parallel trainer's checkpoint continues in a single session (same tensor names).
      const resumed = await createNodeTrainer(ZOO.cnn.build(), options);
      resumed.restore(parallel.state());
      const { images, labels } = batch(0, 64);
      const [x, y] = [await resumed.step(images, labels, 0.05), await parallel.step(images, labels, 0.05)];
      expect(y.loss).toBeCloseTo(x.loss, 5);
      expect(maxDifference(parallel.weights(), resumed.weights())).toBeLessThan(1e-5);
      await resumed.release();
    } finally {
      await Promise.all([single.release(), parallel.release()]);
    }
  }, 60_000);

  it('accumulates micro-batches of an odd batch, with Adam and the same dropout masks as one session', async () => {
    const net = (): Module =>
      composite('Net', { fc1: linear(784, 32), drop: dropout(0.3), fc2: linear(32, 10) }, (m, x, ctx) =>
        m.fc2(m.drop(F.relu(ctx, m.fc1(F.flatten(ctx, x))))),
      );
    const options = { optimizer: adamw(), seed: 3 };
    const single = await createNodeTrainer(net(), options);
    // 63 images in 4 micro-batches (16, 16, 16, 15) over 2 workers.
    const parallel = await ParallelTrainer.create(net(), { ...options, workers: 2, microBatch: 16 });
    try {
      for (let s = 0; s < 3; s++) {
        const { images, labels } = batch(s * 63, 63);
        const a = await single.step(images, labels, 1e-3);
        const b = await parallel.step(images, labels, 1e-3);
        expect(b.loss).toBeCloseTo(a.loss, 5);
      }
      expect(maxDifference(parallel.weights(), single.weights())).toBeLessThan(1e-5);
      const a = await single.evaluate(data.images, data.labels);
      const b = await parallel.evaluate(data.images, data.labels);
      expect(b.correct).toBe(a.correct);
    } finally {
      await Promise.all([single.release(), parallel.release()]);
    }
  }, 60_000);

  it('uses per-slice BatchNorm statistics (like DDP without SyncBN): one SGD step on [A; B] is the mean of steps on A and on B', async () => {
    const options = { optimizer: sgd(), seed: 1 };
    const [a, b] = [batch(0, 32), batch(32, 32)];
    const both = batch(0, 64);
    const parallel = await ParallelTrainer.create(ZOO['fast-cnn'].build(), { ...options, workers: 2 });
    const onA = await createNodeTrainer(ZOO['fast-cnn'].build(), options);
    const onB = await createNodeTrainer(ZOO['fast-cnn'].build(), options);
    const onBoth = await createNodeTrainer(ZOO['fast-cnn'].build(), options);
    try {
      await parallel.step(both.images, both.labels, 0.1);
      await onA.step(a.images, a.labels, 0.1);
      await onB.step(b.images, b.labels, 0.1);
      await onBoth.step(both.images, both.labels, 0.1);
      // Plain SGD is linear in the gradient, and the running statistics are linear in the batch statistics,
      // so per-slice statistics make every parameter and buffer the mean of the two half-batch steps.
      const [wa, wb] = [onA.weights(), onB.weights()];
      const mean = new Map([...wa].map(([k, v]) => [k, v.map((x, i) => (x + (wb.get(k)?.[i] as number)) / 2)]));
      expect(maxDifference(parallel.weights(), mean)).toBeLessThan(1e-5);
      // …which is not the full batch's statistics (that would be SyncBN).
      expect(maxDifference(parallel.weights(), onBoth.weights())).toBeGreaterThan(1e-4);
    } finally {
      await Promise.all([parallel, onA, onB, onBoth].map((t) => t.release()));
    }
  }, 60_000);

  it.skipIf(!nativeKernels()?.optimizerUpdate)(
    'one participant updates natively on its parameters in place, as train steps without workers: mlp (AdamW; SGD in micro-batches) and BatchNorm fast-cnn on a 2-thread session equal one session',
    async () => {
      const cases = [
        { model: 'mlp' as const, optimizer: adamw(), lr: 1e-3, threads: 1, microBatch: undefined, n: 64 },
        { model: 'mlp' as const, optimizer: sgd({ momentum: 0.9 }), lr: 0.01, threads: 1, microBatch: 16, n: 63 },
        {
          model: 'fast-cnn' as const,
          optimizer: sgd({ momentum: 0.9 }),
          lr: 0.01,
          threads: 2,
          microBatch: undefined,
          n: 64,
        },
      ];
      for (const { model, optimizer, lr, threads, microBatch, n } of cases) {
        const options = { optimizer, seed: 2, threads };
        const single = await createNodeTrainer(ZOO[model].build(), options);
        const native = microBatch
          ? await ParallelTrainer.create(ZOO[model].build(), { ...options, threads: 1, workers: 1, microBatch })
          : await createTrainer(ZOO[model].build(), options);
        try {
          if (!microBatch) expect(describeParallelism(options, ZOO[model].build())).toMatch(/native (update|kernels)$/);
          for (let s = 0; s < 3; s++) {
            const { images, labels } = batch(s * n, n);
            const a = await single.step(images, labels, lr);
            const b = await native.step(images, labels, lr);
            expect(b.loss).toBeCloseTo(a.loss, 5);
          }
          // Parameters, optimizer state and BatchNorm's running statistics. (Adam moves a weight whose
          // gradient is near zero by about lr whatever that gradient is, so rounding shows more there.)
          expect(maxDifference(native.state().tensors, single.state().tensors)).toBeLessThan(2e-5);
        } finally {
          await Promise.all([single.release(), native.release()]);
        }
      }
    },
    60_000,
  );

  it('updates through the update graph when asked (no native kernel), to the same weights', async () => {
    const options = { optimizer: adamw(), seed: 4 };
    const single = await createNodeTrainer(ZOO.cnn.build(), options);
    const parallel = await ParallelTrainer.create(ZOO.cnn.build(), { ...options, workers: 2, nativeUpdate: false });
    try {
      for (let s = 0; s < 2; s++) {
        const { images, labels } = batch(s * 64, 64);
        await single.step(images, labels, 1e-3);
        await parallel.step(images, labels, 1e-3);
      }
      expect(maxDifference(parallel.state().tensors, single.state().tensors)).toBeLessThan(1e-5);
    } finally {
      await Promise.all([single.release(), parallel.release()]);
    }
  }, 60_000);

  it('fails the step, instead of hanging, when a worker thread has died', async () => {
    const options = { optimizer: sgd({ momentum: 0.5 }), seed: 0 };
    const { images, labels } = batch(0, 64);
    const parallel = await ParallelTrainer.create(ZOO.cnn.build(), { ...options, workers: 2 });
    try {
      await parallel.step(images, labels, 0.05);
      // Kill the thread behind participant 1 while it idles between steps (private: there is no public
      // way, as there is none for a crash). Not during a step: terminating a thread inside onnxruntime's
      // native run aborts the whole process, in any program.
      const thread = (parallel as unknown as { workers: { worker: { terminate(): Promise<number> } }[] }).workers[0];
      await thread?.worker.terminate();
      await expect(parallel.step(images, labels, 0.05)).rejects.toThrow(/worker/);
      await expect(parallel.step(images, labels, 0.05)).rejects.toThrow(/worker/);
    } finally {
      await parallel.release();
    }
  }, 60_000);

  it('refuses a GPU device and nonsense worker counts', async () => {
    const options = { optimizer: sgd(), seed: 0 };
    await expect(ParallelTrainer.create(ZOO.cnn.build(), { ...options, workers: 0 })).rejects.toThrow(/workers/);
    await expect(ParallelTrainer.create(ZOO.cnn.build(), { ...options, workers: 2, device: 'webgpu' })).rejects.toThrow(
      /CPU only/,
    );
  });
});
