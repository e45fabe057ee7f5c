import { describe, expect, it } from 'vitest';
import type { ConvGeometry } from '../core/autodiff/rules/conv-weight-gradient.ts';
import { inspectModule } from '../core/model/forward-graph.ts';
import { ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { nchwcFilterMap } from '../core/training/nchwc-convs.ts';
import { sgd } from '../core/training/optim/index.ts';
import { buildTrainingGraph } from '../core/training/training-graph.ts';
import { nativeKernels, nativeKernelsStatus } from '../node/native-kernels.ts';
import { createTrainer, describeParallelism } from '../train/parallel/create-trainer.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { convGeometry as geometry } from './helpers/conv-geometry.ts';
import { fixtureBatch, fixtureWeights } from './helpers/fixture-data.ts';
import { sameWeightsAsFirst } from './helpers/same-weights.ts';
import { expectThreePytorchSteps, plainSgdCases } from './helpers/torch-training.ts';

const kernels = nativeKernels();

/** dW by the definition, in float64. */
function reference(x: Float32Array, dY: Float32Array, geo: ConvGeometry, n: number): Float64Array {
  const [c, h, w] = geo.input;
  const [m, ho, wo] = geo.output;
  const [kh, kw] = geo.kernel;
  const dw = new Float64Array(m * c * kh * kw);
  for (let o = 0; o < m; o++)
    for (let ch = 0; ch < c; ch++)
      for (let i = 0; i < kh; i++)
        for (let j = 0; j < kw; j++) {
          let sum = 0;
          for (let b = 0; b < n; b++)
            for (let y = 0; y < ho; y++)
              for (let z = 0; z < wo; z++) {
                const row = y * geo.strides[0] + i * geo.dilations[0] - geo.pads[0];
                const col = z * geo.strides[1] + j * geo.dilations[1] - geo.pads[1];
                if (row < 0 || row >= h || col < 0 || col >= w) continue;
                sum +=
                  (dY[((b * m + o) * ho + y) * wo + z] as number) * (x[((b * c + ch) * h + row) * w + col] as number);
              }
          dw[((o * c + ch) * kh + i) * kw + j] = sum;
        }
  return dw;
}

const CASES: [string, ConvGeometry, number][] = [
  ['3×3, batch 3', geometry([2, 9, 8], 5, [3, 3]), 3],
  [
    'stride 2, padding, 3×2 kernel, dilation 2 across',
    geometry([3, 11, 10], 6, [3, 2], { strides: [2, 2], pads: [1, 1, 1, 1], dilations: [1, 2] }),
    2,
  ],
  ['padding 1 (same size), batch 1', geometry([5, 7, 7], 7, [3, 3], { pads: [1, 1, 1, 1] }), 1],
  ['uneven padding, stride 3', geometry([4, 13, 9], 3, [5, 3], { strides: [3, 2], pads: [2, 0, 1, 1] }), 2],
  ['1×1, 70 output channels (two channel blocks)', geometry([9, 5, 5], 70, [1, 1]), 2],
  ['5×5 on one input channel, 10 outputs (cnn conv1 in small)', geometry([1, 12, 12], 10, [5, 5]), 4],
  // dY goes channels-last 16 positions × 16 channels at a time (the rest one by one): whole blocks only,
  // and a second channel block half of padding.
  ['3×3 to 20 channels of an 8×8 map (64 positions, 2 channel blocks)', geometry([1, 10, 10], 20, [3, 3]), 3],
  // Linear layers' shapes: 1×1 convolutions of 1×1 images (one position per image).
  ['a Linear layer, 50 → 37 features, batch 7', geometry([50, 1, 1], 37, [1, 1]), 7],
  ["a Linear layer, 784 (mlp fc1's inputs) → 44 features, batch 9", geometry([784, 1, 1], 44, [1, 1]), 9],
];

describe.skipIf(!kernels)(`native conv weight gradient (${nativeKernelsStatus()})`, () => {
  for (const [title, geo, n] of CASES) {
    it(`${title}: matches the float64 sum on 1 and 2 threads`, () => {
      const rng = new Rng(3);
      const x = Float32Array.from({ length: n * geo.input.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1));
      const dY = Float32Array.from({ length: n * geo.output.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1));
      const expected = reference(x, dY, geo, n);
      for (const threads of [1, 2]) {
        const dw = new Float32Array(expected.length).fill(Number.NaN); // every entry must be written
        kernels?.convWeightGradient(x, dY, dw, geo, n, threads);
        const scale = expected.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
        for (let i = 0; i < dw.length; i++)
          expect(Math.abs((dw[i] as number) - (expected[i] as number)) / scale).toBeLessThan(1e-5);
      }
    });
  }

  it('rejects arrays of the wrong length', () => {
    const geo = geometry([2, 6, 6], 3, [3, 3]);
    expect(() =>
      kernels?.convWeightGradient(new Float32Array(10), new Float32Array(96), new Float32Array(54), geo, 1),
    ).toThrow(/x has the wrong length/);
  });

  // An outside review's fuzzing found both: the binding takes any pad ≥ 0 and any output size, and the
  // padded plane's size was summed in int32 (a pad of 2³¹ − 1 wrapped it to 1 row: an 8 GB write past the
  // scratch) or multiplied past int64 (strides near 2³¹ with a made-up Ho, Wo: 80 floats of scratch).
  it('a pad or stride near 2³¹ ends in an error, not a write past the scratch', () => {
    const hugePad: ConvGeometry = {
      input: [1, 1, 1],
      output: [1, 1, 1],
      kernel: [1, 1],
      strides: [1, 1],
      pads: [2 ** 31 - 1, 0, 0, 0],
      dilations: [1, 1],
    };
    const one = () => Float32Array.of(1);
    expect(() => kernels?.convWeightGradient(one(), one(), one(), hugePad, 1, 1)).toThrow(/4 GB of scratch/);
    const hugeStrides: ConvGeometry = {
      ...hugePad,
      input: [16, 8, 8],
      output: [1, 2, 2],
      pads: [0, 0, 0, 0],
      strides: [2 ** 31 - 1, 2 ** 29 - 1],
    };
    expect(() =>
      kernels?.convWeightGradient(
        new Float32Array(16 * 64),
        new Float32Array(4),
        new Float32Array(16),
        hugeStrides,
        1,
        1,
      ),
    ).toThrow(/4 GB of scratch/);
    // The kernel still works afterwards.
    const geo = geometry([1, 3, 3], 1, [2, 2]);
    const dw = new Float32Array(4);
    kernels?.convWeightGradient(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8, 9), Float32Array.of(1, 0, 0, 1), dw, geo, 1, 1);
    expect(Array.from(dw)).toEqual([1 + 5, 2 + 6, 4 + 8, 5 + 9]);
  });
});

describe.skipIf(!kernels)('native gather (weights into the NCHWc filter layout)', () => {
  it("puts every weight where ORT's Reshape-Transpose-Reshape would, zero in the padding", () => {
    // 20 outputs × 10 inputs × 1×2, block 16, input below a block: OIHWBo [2, 10, 1, 2, 16].
    const dims = [20, 10, 1, 2] as const;
    const w = Float32Array.from({ length: 400 }, (_, i) => i + 1);
    const out = new Float32Array(2 * 16 * 10 * 2).fill(Number.NaN);
    kernels?.gather(w, out, nchwcFilterMap(dims, 16, false));
    for (let ob = 0; ob < 2; ob++)
      for (let i = 0; i < 10; i++)
        for (let p = 0; p < 2; p++)
          for (let bo = 0; bo < 16; bo++) {
            const o = ob * 16 + bo;
            const at = ((ob * 10 + i) * 2 + p) * 16 + bo;
            expect(out[at]).toBe(o < 20 ? (w[(o * 10 + i) * 2 + p] as number) : 0);
          }
  });

  it('refuses a map that points outside the source or differs from the output in length', () => {
    const out = new Float32Array(2);
    expect(() => kernels?.gather(new Float32Array(2), out, Int32Array.of(0, 2))).toThrow(/out of range/);
    expect(() => kernels?.gather(new Float32Array(2), out, Int32Array.of(0, -2))).toThrow(/out of range/);
    expect(() => kernels?.gather(new Float32Array(2), out, Int32Array.of(0))).toThrow(/differ in length/);
  });
});

describe.skipIf(!kernels)('native kernels in training steps vs PyTorch', () => {
  const { images, labels } = fixtureBatch();
  // mlp has no Conv: its native steps are the OpenBLAS weight gradients (test/native-linear-weights.test.ts).
  for (const c of plainSgdCases().filter((k) => k.model !== 'mlp' || kernels?.linearWeightGradient)) {
    // Two workers normalize BatchNorm per slice (like DDP without SyncBN): only BatchNorm-free models match.
    // One session × 2 threads (sessions and kernels on both) sees the whole batch: every model matches.
    const bnFree = inspectModule(ZOO[c.model].build()).params.every((p) => p.trainable);
    const runs: [number, 'workers' | 'session' | undefined][] = [
      [1, undefined],
      [2, 'session'],
    ];
    if (bnFree) runs.push([2, 'workers']);
    for (const [threads, parallelism] of runs) {
      it(`${c.model}, ${threads} thread(s)${parallelism ? `, ${parallelism}` : ''}: three SGD steps, then the weights`, async () => {
        const module = ZOO[c.model].build();
        const options = {
          optimizer: sgd({ momentum: 0.5 }),
          threads,
          parallelism,
          weights: fixtureWeights(buildTrainingGraph(module, { optimizer: sgd() }).params),
        };
        expect(describeParallelism(options, module)).toContain('native kernels');
        const trainer = await createTrainer(module, options);
        try {
          await expectThreePytorchSteps(trainer, { images, labels }, c);
        } finally {
          await trainer.release();
        }
      });
    }
  }
});

describe.skipIf(!kernels)('native conv weight gradients with micro-batches', () => {
  it('accumulate to what the pure-ORT graph gives (cnn, odd batch in pieces of 5, two workers)', async () => {
    const { images, labels } = fixtureBatch();
    const n = Math.min(13, labels.length);
    const batch = images.subarray(0, n * 784);
    const check = sameWeightsAsFirst(5);
    for (const nativeConvWeights of [false, true]) {
      const trainer = await ParallelTrainer.create(ZOO.cnn.build(), {
        optimizer: sgd({ momentum: 0.5 }),
        seed: 1,
        workers: 2,
        microBatch: 5,
        nativeConvWeights,
      });
      try {
        for (let s = 0; s < 2; s++) await trainer.step(batch, labels.slice(0, n), 0.05);
        check(trainer.weights());
      } finally {
        await trainer.release();
      }
    }
  });
});
