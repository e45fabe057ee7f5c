/**
 * Fully connected weight gradients by the machine's OpenBLAS (native/blas.cc): the kernel against a float64
 * sum, the gradient graph that hands out X and dY instead of dW, and mlp's training steps against PyTorch's.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { INPUT_NAME } from '../core/contract.ts';
import { composite, F, linear as linearLayer } from '../core/model/layers/index.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { sgd } from '../core/training/optim/index.ts';
import { buildGradientGraph, gradName } from '../core/training/training-graph.ts';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';
import { createTrainer, describeParallelism, outweighsItsInputs } from '../train/parallel/create-trainer.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { convGeometry } from './helpers/conv-geometry.ts';
import { fixtureBatch } from './helpers/fixture-data.ts';
import { sameWeightsAsFirst } from './helpers/same-weights.ts';

const kernels = nativeKernels();
const linear = kernels?.linearWeightGradient;

/** dW [out, in] = Σ_b dY[b, o] · X[b, i], in float64. */
function reference(x: Float32Array, dY: Float32Array, n: number, inFeatures: number, outFeatures: number) {
  const dw = new Float64Array(outFeatures * inFeatures);
  for (let o = 0; o < outFeatures; o++)
    for (let i = 0; i < inFeatures; i++) {
      let sum = 0;
      for (let b = 0; b < n; b++) sum += (dY[b * outFeatures + o] as number) * (x[b * inFeatures + i] as number);
      dw[o * inFeatures + i] = sum;
    }
  return dw;
}

describe.skipIf(!linear)(`OpenBLAS linear weight gradient (${nativeKernelsStatus()})`, () => {
  const shapes: [n: number, inFeatures: number, outFeatures: number][] = [
    [7, 50, 37],
    [9, 784, 44],
    [3, 5, 1],
    [64, 784, 512], // mlp's first layer: enough work for every thread asked
    [1, 3, 200],
  ];
  for (const [n, inFeatures, outFeatures] of shapes) {
    it(`${n} images, ${inFeatures} → ${outFeatures}: the float64 sum on 1, 2 and 3 threads`, () => {
      const rng = new Rng(5);
      const x = Float32Array.from({ length: n * inFeatures }, () => rng.uniform(-1, 1));
      const dY = Float32Array.from({ length: n * outFeatures }, () => rng.uniform(-1, 1));
      const expected = reference(x, dY, n, inFeatures, outFeatures);
      const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      for (const threads of [1, 2, 3]) {
        const dw = new Float32Array(expected.length).fill(Number.NaN); // every entry must be written
        linear?.(x, dY, dw, n, inFeatures, outFeatures, threads);
        let worst = 0; // NaN (an entry left unwritten) fails the comparison below too
        for (let i = 0; i < dw.length; i++) {
          const error = Math.abs((dw[i] as number) - (expected[i] as number)) / scale;
          worst = Number.isNaN(error) ? Number.NaN : Math.max(worst, error);
        }
        expect(worst, `${threads} thread(s)`).toBeLessThan(1e-5);
      }
    });
  }

  it('no images: a zero gradient', () => {
    const dw = new Float32Array(12).fill(Number.NaN);
    linear?.(new Float32Array(0), new Float32Array(0), dw, 0, 4, 3);
    expect([...dw]).toEqual(new Array(12).fill(0));
  });

  it('refuses wrong lengths and shapes as JS errors', () => {
    const x = new Float32Array(8);
    const dY = new Float32Array(6);
    expect(() => linear?.(x, dY, new Float32Array(11), 2, 4, 3)).toThrow(/must be Float32Arrays of/);
    expect(() => linear?.(x, new Float32Array(5), new Float32Array(12), 2, 4, 3)).toThrow(/must be Float32Arrays of/);
    expect(() => linear?.(x, dY, new Float32Array(12), -2, -4, 3)).toThrow(/must not be negative/);
    // A fresh thread per part per call: a million asked for must be refused, not attempted.
    for (const threads of [0, 257, 1e6]) {
      expect(() => linear?.(x, dY, new Float32Array(12), 2, 4, 3, threads)).toThrow(/threads must be 1 to 256/);
      const geo = convGeometry([1, 4, 4], 1, [3, 3]);
      expect(() =>
        kernels?.convWeightGradient(new Float32Array(32), new Float32Array(8), new Float32Array(9), geo, 2, threads),
      ).toThrow(/threads must be 1 to 256/);
    }
  });
});

describe('a gradient graph with fully connected weights left out', () => {
  it("mlp: the wide layers' X and dY come out instead of dW, the first layer's X is the images themselves", () => {
    const graph = buildGradientGraph(ZOO.mlp.build(), { externalLinearWeights: outweighsItsInputs(64) });
    // 784·512, 512·256 and 256·128 weights outweigh 64 images' X and dY; 128·64 and 64·10 do not.
    expect(graph.external.map((e) => [e.kind, e.weight])).toEqual([
      ['linear', 'l3.weight'],
      ['linear', 'l2.weight'],
      ['linear', 'l1.weight'],
    ]);
    expect(graph.external.find((e) => e.weight === 'l1.weight')?.x).toBe(INPUT_NAME);
    const outputs = new Map((graph.model.graph?.output ?? []).map((o) => [o.name, o]));
    for (const e of graph.external) {
      expect(outputs.has(gradName(e.weight)), e.weight).toBe(false);
      expect(outputs.has(e.dY)).toBe(true);
    }
    for (const kept of ['l4.weight', 'l5.weight', 'l1.bias']) expect(outputs.has(gradName(kept)), kept).toBe(true);
    const dims = (name: string) => outputs.get(name)?.type?.tensor_type?.shape?.dim?.map((d) => d.dim_value ?? '');
    const l2 = graph.external.find((e) => e.weight === 'l2.weight');
    expect(dims(l2?.x ?? '')).toEqual(['', 512]);
    expect(dims(l2?.dY ?? '')).toEqual(['', 256]);
  });

  it('the conv models keep their small classifiers in ORT (X would cost more to hand out than dW)', () => {
    for (const model of ['cnn', 'resnet', 'inception'] as const) {
      const graph = buildGradientGraph(ZOO[model].build(), { externalLinearWeights: outweighsItsInputs(32) });
      expect(
        graph.external.filter((e) => e.kind === 'linear'),
        model,
      ).toEqual([]);
    }
  });
});

describe.skipIf(!linear)('mlp trained with OpenBLAS weight gradients', () => {
  // PyTorch's three SGD steps at 1 and 2 threads and with 2 workers: test/native-kernels.test.ts.
  it("two workers with micro-batches of an odd batch reach the pure-ORT graph's weights", async () => {
    const n = 13;
    const batch = fixtureBatch(n);
    const check = sameWeightsAsFirst(5);
    for (const blas of [false, true]) {
      const trainer = await ParallelTrainer.create(ZOO.mlp.build(), {
        optimizer: sgd({ momentum: 0.5 }),
        seed: 1,
        workers: 2,
        microBatch: 5,
        // Every layer, whatever its size, to run the kernel on the smallest ones too.
        nativeLinearWeights: blas ? () => true : undefined,
      });
      try {
        for (let s = 0; s < 2; s++) await trainer.step(batch.images, batch.labels, 0.05);
        check(trainer.weights());
      } finally {
        await trainer.release();
      }
    }
  });
});

/** A hidden layer applied twice: its weight gets two gradient parts, summed in the graph. */
const sharedHidden = () =>
  composite(
    'Shared',
    { inp: linearLayer(784, 256), hidden: linearLayer(256, 256), out: linearLayer(256, 10) },
    (m, x, ctx) => {
      x = F.relu(ctx, m.inp(F.flatten(ctx, x)));
      x = F.relu(ctx, m.hidden(x));
      x = F.relu(ctx, m.hidden(x));
      return m.out(x);
    },
  );

describe('a weight two layers share', () => {
  it('keeps its gradient in the graph (the sum of its parts is there)', () => {
    const graph = buildGradientGraph(sharedHidden(), { externalLinearWeights: () => true });
    expect(graph.external.map((e) => e.weight).sort()).toEqual(['inp.weight', 'out.weight']);
  });

  it.skipIf(!linear)("trains to the pure-ORT graph's weights", async () => {
    const batch = fixtureBatch(9);
    const check = sameWeightsAsFirst(5);
    for (const native of [false, true]) {
      const options = { optimizer: sgd({ momentum: 0.5 }), threads: 1, seed: 2, native };
      expect(describeParallelism(options, sharedHidden())).toBe(
        native ? '1 thread, native kernels' : '1 session × 1 thread',
      );
      const trainer = await createTrainer(sharedHidden(), options);
      try {
        for (let s = 0; s < 2; s++) await trainer.step(batch.images, batch.labels, 0.05);
        check(trainer.weights());
      } finally {
        await trainer.release();
      }
    }
  });
});

describe.skipIf(!linear)('which runs say they use the kernel', () => {
  it('mlp at batch 64 does; at batch 1024 no layer outweighs its inputs, so the update alone is native', () => {
    const mlp = ZOO.mlp.build();
    expect(describeParallelism({ threads: 1 }, mlp)).toBe('1 thread, native kernels');
    expect(describeParallelism({ threads: 1, batchSize: 1024 }, mlp)).toBe('1 session × 1 thread, native update');
  });
});

describe.skipIf(!kernels || process.platform !== 'linux')('without OpenBLAS (MNIST_ONNX_CNN_BLAS=0)', () => {
  it('mlp trains on the ORT graph, and says so', () => {
    const script = `
      import { ZOO } from './core/model/zoo/index.ts';
      import { sgd } from './core/training/optim/index.ts';
      import { createTrainer, describeParallelism } from './train/parallel/create-trainer.ts';
      const options = { optimizer: sgd({ momentum: 0.5 }), threads: 1, seed: 0 };
      const trainer = await createTrainer(ZOO.mlp.build(), options);
      const { loss } = await trainer.step(new Float32Array(4 * 784).fill(0.5), [1, 2, 3, 4], 0.01);
      await trainer.release();
      const maps = (await import('node:fs')).readFileSync('/proc/self/maps', 'utf8');
      const blasLoaded = /libopenblas/.test(maps);
      console.log(JSON.stringify({ mode: describeParallelism(options, ZOO.mlp.build()), loss, blasLoaded }));`;
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      env: { ...process.env, MNIST_ONNX_CNN_BLAS: '0' },
    });
    const { mode, loss, blasLoaded } = JSON.parse(out.trim().split('\n').at(-1) as string);
    expect(mode).toBe('1 session × 1 thread, native update');
    expect(blasLoaded, 'OpenBLAS mapped into the process').toBe(false);
    expect(Number.isFinite(loss)).toBe(true);
  });
});
