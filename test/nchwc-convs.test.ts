/**
 * Forward Convs as ORT's NCHWc convolutions with the weights reordered in the graph (core/training/nchwc-convs.ts):
 * each rewritten Conv gives what ORT's plain Conv gives — channels below, at and between blocks, padded output
 * channels, pads, strides, with and without bias — and whole training steps with it match steps without it.
 * Skipped where this CPU's ORT has no NCHWc kernels.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { NCHWC_FILTER } from '../core/autodiff/native-ops.ts';
import { gradientRules } from '../core/autodiff/rules/index.ts';
import { maxPoolRule } from '../core/autodiff/rules/pooling.ts';
import { MODEL_NAMES, ZOO } from '../core/model/zoo/index.ts';
import { Rng } from '../core/random.ts';
import { convsAsNchwc, NCHWC_DOMAIN } from '../core/training/nchwc-convs.ts';
import { fuseNchwcConvs } from '../core/training/nchwc-fusion.ts';
import { sgd } from '../core/training/optim/index.ts';
import { splitAtNativeNodes } from '../core/training/segments.ts';
import { buildGradientGraph } from '../core/training/training-graph.ts';
import { nativeKernels } from '../node/native-kernels.ts';
import { nchwcBlockSize } from '../node/nchwc.ts';
import { createGradientRunner, encodeSegmentPlan } from '../node/segmented-session.ts';
import { int, ints } from '../onnx/attributes.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
import { ParallelTrainer } from '../train/parallel/parallel-trainer.ts';
import { createNodeTrainer } from '../train/trainer.ts';
import { syntheticDigits } from './helpers/synthetic.ts';

const block = await nchwcBlockSize();

interface ConvCase {
  n: number;
  c: number;
  size: number;
  m: number;
  k: number;
  pad: number;
  stride: number;
  bias: boolean;
}

/** A graph of one Conv (weights and bias as inputs, as in a training step) and a Relu after it. */
function convGraph({ n, c, size, m, k, pad, stride, bias }: ConvCase): GraphBuilder {
  const g = new GraphBuilder('conv');
  const x = g.input('x', 'FLOAT', [n, c, size, size]);
  const w = g.input('w', 'FLOAT', [m, c, k, k]);
  const inputs = bias ? [x, w, g.input('b', 'FLOAT', [m])] : [x, w];
  const attributes = { kernel_shape: ints([k, k]), pads: ints([pad, pad, pad, pad]), strides: ints([stride, stride]) };
  const out = Math.floor((size + 2 * pad - k) / stride) + 1;
  g.output(g.op('Relu', [g.op('Conv', inputs, attributes)]), 'FLOAT', [n, m, out, out], 'y');
  return g;
}

async function run(g: GraphBuilder, feeds: Record<string, ort.Tensor>): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(encodeModel(g.toModel()), { intraOpNumThreads: 1 });
  try {
    return (await session.run(feeds)).y?.data as Float32Array;
  } finally {
    await session.release();
  }
}

function maxDifference(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let max = 0;
  for (let i = 0; i < actual.length; i++)
    max = Math.max(max, Math.abs((actual[i] as number) - (expected[i] as number)));
  // Sums of up to 800 products of values in [-1, 1]: float rounding, summed in another order.
  return max;
}

describe.skipIf(!block)(`NCHWc forward convolutions (block ${block})`, () => {
  const cases: ConvCase[] = [
    { n: 3, c: 1, size: 28, m: 10, k: 5, pad: 0, stride: 1, bias: true }, // cnn's first: below a block, 10 → 16 outputs
    { n: 2, c: 10, size: 12, m: 20, k: 5, pad: 0, stride: 1, bias: true }, // below a block in, 20 → 32 out
    { n: 2, c: 16, size: 12, m: 16, k: 3, pad: 1, stride: 1, bias: true }, // resnet's block: whole blocks
    { n: 2, c: 28, size: 7, m: 12, k: 3, pad: 1, stride: 1, bias: false }, // densenet's: 28 → 32 channels in
    { n: 2, c: 32, size: 14, m: 64, k: 5, pad: 2, stride: 2, bias: true }, // cnn7's stride-2 downsampling
    { n: 1, c: 24, size: 6, m: 24, k: 1, pad: 0, stride: 1, bias: true }, // a 1×1
  ];
  for (const conv of cases) {
    it(`${conv.c}→${conv.m}, ${conv.k}×${conv.k}, pad ${conv.pad}, stride ${conv.stride}${conv.bias ? '' : ', no bias'}: as ORT's Conv`, async () => {
      const rng = new Rng(conv.c * 100 + conv.m);
      const random = (length: number) => Float32Array.from({ length }, () => rng.uniform(-1, 1));
      const feeds: Record<string, ort.Tensor> = {
        x: new ort.Tensor('float32', random(conv.n * conv.c * conv.size ** 2), [conv.n, conv.c, conv.size, conv.size]),
        w: new ort.Tensor('float32', random(conv.m * conv.c * conv.k ** 2), [conv.m, conv.c, conv.k, conv.k]),
      };
      if (conv.bias) feeds.b = new ort.Tensor('float32', random(conv.m), [conv.m]);
      const expected = await run(convGraph(conv), feeds);
      const g = convGraph(conv);
      expect(convsAsNchwc(g, block as number, new Set(['w']))).toBe(1);
      expect(g.nodes.some((node) => node.op_type === 'Conv' && node.domain === NCHWC_DOMAIN)).toBe(true);
      expect(g.nodes.some((node) => node.op_type === 'Conv' && !node.domain)).toBe(false);
      const actual = await run(g, feeds);
      expect(maxDifference(actual, expected)).toBeLessThan(5e-5);
    });

    it.skipIf(!nativeKernels())(
      `${conv.c}→${conv.m}, ${conv.k}×${conv.k}, pad ${conv.pad}, stride ${conv.stride}: the weights reordered natively (a step before the segment), as ORT's Conv`,
      async () => {
        const rng = new Rng(conv.c * 100 + conv.m + 1);
        const random = (length: number) => Float32Array.from({ length }, () => rng.uniform(-1, 1));
        const feeds: Record<string, ort.Tensor> = {
          x: new ort.Tensor('float32', random(conv.n * conv.c * conv.size ** 2), [
            conv.n,
            conv.c,
            conv.size,
            conv.size,
          ]),
          w: new ort.Tensor('float32', random(conv.m * conv.c * conv.k ** 2), [conv.m, conv.c, conv.k, conv.k]),
        };
        if (conv.bias) feeds.b = new ort.Tensor('float32', random(conv.m), [conv.m]);
        const expected = await run(convGraph(conv), feeds);
        const g = convGraph(conv);
        expect(convsAsNchwc(g, block as number, new Set(['w']), true)).toBe(1);
        expect(g.nodes.some((node) => node.op_type === 'Transpose')).toBe(false);
        const plan = splitAtNativeNodes(g.toModel(), g.shapes);
        expect(plan.steps.map((s) => (s.kind === 'native' ? s.node.op_type : 'segment'))).toEqual([
          NCHWC_FILTER,
          'segment',
        ]);
        const runner = await createGradientRunner(encodeSegmentPlan(plan));
        try {
          // Twice: the reorder's buffer is reused, its padding must stay zero.
          for (let i = 0; i < 2; i++) {
            const actual = (await runner.run(feeds)).y?.data as Float32Array;
            expect(maxDifference(actual, expected)).toBeLessThan(5e-5);
          }
        } finally {
          await runner.release();
        }
      },
    );
  }

  it('leaves Convs alone whose weights are not the named ones, or that it cannot take (groups, channels not in fours)', () => {
    const g = convGraph({ n: 1, c: 18, size: 8, m: 8, k: 3, pad: 1, stride: 1, bias: false });
    expect(convsAsNchwc(g, block as number, new Set(['other']))).toBe(0);
    expect(convsAsNchwc(g, block as number, new Set(['w']))).toBe(0); // 18 channels: ReorderInput takes fours
    const grouped = new GraphBuilder('grouped');
    const x = grouped.input('x', 'FLOAT', [1, 16, 4, 4]);
    const w = grouped.input('w', 'FLOAT', [16, 1, 3, 3]);
    grouped.output(grouped.op('Conv', [x, w], { group: int(16) }), 'FLOAT', [1, 16, 2, 2], 'y');
    expect(convsAsNchwc(grouped, block as number, new Set(['w']))).toBe(0);
  });

  /** A residual block as resnet writes it: Relu(Conv) → MaxPool → Conv → Relu → Conv, Relu(Sum(pooled, ·)). */
  function residualGraph(): GraphBuilder {
    const g = new GraphBuilder('residual');
    const x = g.input('x', 'FLOAT', [2, 16, 8, 8]);
    const conv = (input: string, w: string) =>
      g.op('Conv', [input, g.input(w, 'FLOAT', [16, 16, 3, 3])], {
        kernel_shape: ints([3, 3]),
        pads: ints([1, 1, 1, 1]),
      });
    const first = g.op('Relu', [conv(x, 'w1')], {}, { name: 'first_relu' });
    const pooled = g.op('MaxPool', [first], { kernel_shape: ints([2, 2]), strides: ints([2, 2]) });
    const inner = g.op('Relu', [conv(pooled, 'w2')]);
    const out = g.op('Relu', [g.op('Sum', [pooled, conv(inner, 'w3')])]);
    g.output(out, 'FLOAT', [2, 16, 4, 4], 'y');
    return g;
  }

  it("fuses what ORT's optimizer would: ReLUs and the residual Sum into the Convs, pools on blocked tensors, no reorder round trips; same result", async () => {
    const rng = new Rng(7);
    const random = (shape: number[]) =>
      new ort.Tensor(
        'float32',
        Float32Array.from({ length: shape.reduce((a, b) => a * b) }, () => rng.uniform(-1, 1)),
        shape,
      );
    const feeds = {
      x: random([2, 16, 8, 8]),
      w1: random([16, 16, 3, 3]),
      w2: random([16, 16, 3, 3]),
      w3: random([16, 16, 3, 3]),
    };
    const expected = await run(residualGraph(), feeds);
    const g = residualGraph();
    convsAsNchwc(g, block as number, new Set(['w1', 'w2', 'w3']));
    expect(fuseNchwcConvs(g, new Set())).toBeGreaterThan(0);
    const ops = g.nodes.map((n) => `${n.domain ? 'nchwc.' : ''}${n.op_type}`);
    expect(ops.filter((op) => op === 'Relu' || op === 'Sum' || op === 'MaxPool')).toEqual([]);
    expect(ops.filter((op) => op === 'nchwc.ReorderInput')).toEqual(['nchwc.ReorderInput']); // x's alone
    const actual = await run(g, feeds);
    let [max, scale] = [0, 0];
    for (let i = 0; i < actual.length; i++) {
      max = Math.max(max, Math.abs((actual[i] as number) - (expected[i] as number)));
      scale = Math.max(scale, Math.abs(expected[i] as number));
    }
    expect(max / scale).toBeLessThan(1e-6); // three Convs deep: float rounding, relative to the largest output
  });

  it('leaves a value the backward pass reads where it was: the pre-activation output named in keep stays, with its Relu', () => {
    const g = residualGraph();
    convsAsNchwc(g, block as number, new Set(['w1', 'w2', 'w3']));
    const relu = g.nodes.find((n) => n.name === 'first_relu');
    fuseNchwcConvs(g, new Set([relu?.input[0] as string]));
    expect(g.nodes.some((n) => n.name === 'first_relu')).toBe(true);
  });

  it('leaves no reorder that nothing reads, in the gradient graph of every zoo model', () => {
    for (const model of MODEL_NAMES) {
      const { model: proto } = buildGradientGraph(ZOO[model].build(), { nchwcBlock: block as number });
      const nodes = proto.graph?.node ?? [];
      const read = new Set([...nodes.flatMap((n) => n.input), ...(proto.graph?.output ?? []).map((o) => o.name)]);
      const unread = nodes.filter((n) => n.domain === NCHWC_DOMAIN && !n.output.some((o) => read.has(o)));
      expect(
        unread.map((n) => n.name),
        model,
      ).toEqual([]);
    }
  });

  it('cuts the native step so that no blocked (channel-padded) tensor crosses between its steps', () => {
    for (const model of MODEL_NAMES) {
      const graph = buildGradientGraph(ZOO[model].build(), {
        nchwcBlock: block as number,
        externalConvWeights: () => true,
        nativeGradients: { convInputs: () => true, maxPools: () => true },
      });
      const blocked = new Set(
        (graph.model.graph?.node ?? [])
          .filter((n) => n.domain === NCHWC_DOMAIN && n.op_type !== 'ReorderOutput')
          .flatMap((n) => n.output),
      );
      const crossing = (graph.segments?.steps ?? []).flatMap((s) => (s.kind === 'graph' ? s.outputs : []));
      expect(
        crossing.filter((v) => blocked.has(v)),
        model,
      ).toEqual([]);
    }
  });

  it('trains as the plain graph does: three SGD steps of resnet, its conv-shortcut variant, inception and BatchNorm cnn7 (stride 2); max-pool routing by unpooling and by first maximum', async () => {
    const data = syntheticDigits(48, 9);
    const images = data.images.slice(0, 16 * 784);
    const labels = data.labels.slice(0, 16);
    // Unpooling reads MaxPool's Indices output, so only the first-maximum routing lets the pools run blocked.
    const firstMax = { ...gradientRules, MaxPool: maxPoolRule(() => 'first-max') };
    const cases = [
      ['resnet', undefined],
      ['resnet-convshortcut', undefined],
      ['inception', undefined],
      ['cnn7', undefined],
      ['resnet', firstMax],
      ['inception', firstMax],
    ] as const;
    for (const [model, rules] of cases) {
      const options = { optimizer: sgd({ momentum: 0.9 }), seed: 5, rules };
      const plain = await createNodeTrainer(ZOO[model].build(), { ...options, nchwc: false });
      const nchwc = await ParallelTrainer.create(ZOO[model].build(), { ...options, workers: 1, threads: 1 });
      try {
        for (let s = 0; s < 3; s++) {
          const a = await plain.step(images, labels, 0.01);
          const b = await nchwc.step(images, labels, 0.01);
          expect(b.loss, model).toBeCloseTo(a.loss, 5);
        }
        const [a, b] = [plain.weights(), nchwc.weights()];
        for (const [name, x] of a) {
          const y = b.get(name) as Float32Array;
          for (let i = 0; i < x.length; i++)
            expect(Math.abs((x[i] as number) - (y[i] as number)), name).toBeLessThan(1e-5);
        }
      } finally {
        await Promise.all([plain.release(), nchwc.release()]);
      }
    }
  }, 60_000);
});
