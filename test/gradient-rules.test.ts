/**
 * Every gradient rule against float64 finite differences. First each rule on its own, on a small
 * hand-built graph (odd shapes, broadcasting both ways, every Gemm transpose), with a check that every
 * rule in the table has one; then rules in combination inside small modules: stride 2, padding,
 * dilation, batch 1 and 3, and max-pool windows full of ties. Relative error must stay < 1e-3.
 */
import { describe, expect, it } from 'vitest';
import { float, int, ints } from '../export/onnx/attributes.ts';
import { GraphBuilder } from '../export/onnx/builder.ts';
import { int64Tensor } from '../export/onnx/tensor.ts';
import { backward } from '../train/autodiff/backward.ts';
import { dY } from '../train/autodiff/rule.ts';
import { gradientRules } from '../train/autodiff/rules/index.ts';
import {
  avgPool2dLayer,
  batchNorm2d,
  composite,
  conv2d,
  dropout,
  F,
  linear,
  type Module,
  maxPool2dLayer,
} from '../train/layers/index.ts';
import { type GradCheckOptions, gradientCheck, type OpCase, opGradientCheck } from './helpers/gradcheck.ts';

const TOLERANCE = 1e-3;
/**
 * And within this many of its own noise units: σ, our float32 gradient's spread at float32 neighbours
 * of the point, plus the finite difference's uncertainty and one roundoff (see gradient-models.test.ts).
 * Measured: the worst check here uses 3.4 of them.
 */
const NOISE_MULTIPLE = 10;

type Attrs = Parameters<GraphBuilder['op']>[2];

/** One node of `op` on inputs named a, b, c… of the given shapes (all differentiated). */
function opCase(op: string, shapes: number[][], output: number[], attributes: Attrs = {}): OpCase {
  const names = shapes.map((_, i) => String.fromCharCode(97 + i));
  return {
    inputs: Object.fromEntries(names.map((n, i) => [n, shapes[i] as number[]])),
    build: (g) => ({ output: g.op(op, names, attributes), shape: output }),
  };
}

/** A batch-statistics BatchNormalization, emitted as the training form does (see layers/batchnorm2d.ts). */
const batchNormOfBatch: OpCase = {
  inputs: { x: [3, 2, 4, 3], gamma: [2], beta: [2] },
  build: (g) => {
    const axes = { axes: ints([0, 2, 3]), keepdims: int(0) };
    const mean = g.op('ReduceMean', ['x'], axes);
    const centered = g.op('Sub', ['x', g.op('Reshape', [mean, g.constant(int64Tensor([4], [1, 2, 1, 1]))])]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centered, centered])], axes);
    for (const v of [mean, variance]) g.shapes.set(v, [2]);
    return { output: g.op('BatchNormalization', ['x', 'gamma', 'beta', mean, variance]), shape: [3, 2, 4, 3] };
  },
};

/** Per op type, the cases that check its rule alone. The first test holds this table to the rule table. */
const RULE_CASES: Record<string, Record<string, OpCase>> = {
  Add: {
    '[3,1,5] + [4,1]: each operand broadcast along an axis of the other': opCase(
      'Add',
      [
        [3, 1, 5],
        [4, 1],
      ],
      [3, 4, 5],
    ),
    '[2,3] + scalar': opCase('Add', [[2, 3], []], [2, 3]),
  },
  Sub: {
    '[3,1,5] − [4,1]': opCase(
      'Sub',
      [
        [3, 1, 5],
        [4, 1],
      ],
      [3, 4, 5],
    ),
    '[4,1] − [3,1,5]: the subtrahend is the larger one': opCase(
      'Sub',
      [
        [4, 1],
        [3, 1, 5],
      ],
      [3, 4, 5],
    ),
  },
  Mul: {
    '[2,1,3] · [4,1]': opCase(
      'Mul',
      [
        [2, 1, 3],
        [4, 1],
      ],
      [2, 4, 3],
    ),
    'equal shapes [3,5]': opCase(
      'Mul',
      [
        [3, 5],
        [3, 5],
      ],
      [3, 5],
    ),
  },
  Sum: { '[2,3] + [3] + [2,1]': opCase('Sum', [[2, 3], [3], [2, 1]], [2, 3]) },
  Identity: { '[3,4]': opCase('Identity', [[3, 4]], [3, 4]) },
  Relu: { '[3,7] around 0': opCase('Relu', [[3, 7]], [3, 7]) },
  Reshape: {
    '[2,3,4] → [4,-1]': {
      inputs: { a: [2, 3, 4] },
      build: (g) => ({ output: g.op('Reshape', ['a', g.constant(int64Tensor([2], [4, -1]))]), shape: [4, 6] }),
    },
  },
  Flatten: {
    '[2,3,4] at axis 1': opCase('Flatten', [[2, 3, 4]], [2, 12], { axis: int(1) }),
    '[2,3,4] at axis 2': opCase('Flatten', [[2, 3, 4]], [6, 4], { axis: int(2) }),
  },
  Concat: {
    '[2,1,3] ‖ [2,3,3] ‖ [2,2,3] on axis 1': opCase(
      'Concat',
      [
        [2, 1, 3],
        [2, 3, 3],
        [2, 2, 3],
      ],
      [2, 6, 3],
      {
        axis: int(1),
      },
    ),
    '[2,3] ‖ [2,1] on axis 1': opCase(
      'Concat',
      [
        [2, 3],
        [2, 1],
      ],
      [2, 4],
      { axis: int(1) },
    ),
  },
  MatMul: {
    '[3,4]·[4,5]': opCase(
      'MatMul',
      [
        [3, 4],
        [4, 5],
      ],
      [3, 5],
    ),
    '[1,3]·[3,2]': opCase(
      'MatMul',
      [
        [1, 3],
        [3, 2],
      ],
      [1, 2],
    ),
  },
  Gemm: {
    'A·B + C[5], α 0.7, β 1.3': opCase('Gemm', [[3, 4], [4, 5], [5]], [3, 5], { alpha: float(0.7), beta: float(1.3) }),
    'Aᵀ·B + C[3,1]': opCase(
      'Gemm',
      [
        [4, 3],
        [4, 5],
        [3, 1],
      ],
      [3, 5],
      { transA: int(1), beta: float(0.5) },
    ),
    'A·Bᵀ + C[3,5] (Linear)': opCase(
      'Gemm',
      [
        [3, 4],
        [5, 4],
        [3, 5],
      ],
      [3, 5],
      { transB: int(1) },
    ),
    'Aᵀ·Bᵀ, α 2, no C': opCase(
      'Gemm',
      [
        [4, 3],
        [5, 4],
      ],
      [3, 5],
      { transA: int(1), transB: int(1), alpha: float(2) },
    ),
  },
  Conv: {
    'stride 2, padding 1, bias, 6×5 input': opCase('Conv', [[2, 2, 6, 5], [3, 2, 3, 3], [3]], [2, 3, 3, 3], {
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
    'stride 3, dilation 2, no bias (weight gradient cropped)': opCase(
      'Conv',
      [
        [1, 2, 10, 10],
        [3, 2, 3, 3],
      ],
      [1, 3, 2, 2],
      {
        strides: ints([3, 3]),
        dilations: ints([2, 2]),
      },
    ),
  },
  MaxPool: {
    '2×2 windows (MaxUnpool)': opCase('MaxPool', [[2, 2, 6, 6]], [2, 2, 3, 3], {
      kernel_shape: ints([2, 2]),
      strides: ints([2, 2]),
    }),
    '3×3 stride 2 padding 1, overlapping (ScatterElements)': opCase('MaxPool', [[1, 2, 7, 7]], [1, 2, 4, 4], {
      kernel_shape: ints([3, 3]),
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
  },
  AveragePool: {
    '3×3 stride 2 padding 1, count_include_pad 0': opCase('AveragePool', [[2, 2, 7, 7]], [2, 2, 4, 4], {
      kernel_shape: ints([3, 3]),
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
    '2×2 stride 2, odd size': opCase('AveragePool', [[1, 2, 7, 7]], [1, 2, 3, 3], {
      kernel_shape: ints([2, 2]),
      strides: ints([2, 2]),
    }),
  },
  BatchNormalization: {
    'batch statistics computed from x': batchNormOfBatch,
    'fixed (running) statistics': {
      inputs: { x: [2, 3, 2, 2], gamma: [3], beta: [3] },
      constants: { mean: [3], variance: [3] },
      values: (name, rng, length) =>
        name === 'variance' ? Float64Array.from({ length }, () => rng.uniform(0.5, 2)) : undefined,
      build: (g) => ({
        output: g.op('BatchNormalization', ['x', 'gamma', 'beta', 'mean', 'variance']),
        shape: [2, 3, 2, 2],
      }),
    },
  },
};

describe('each gradient rule alone vs float64 finite differences', () => {
  it('every rule in the table has a check here', () => {
    expect(Object.keys(RULE_CASES).sort()).toEqual(Object.keys(gradientRules).sort());
  });

  for (const [op, cases] of Object.entries(RULE_CASES)) {
    for (const [title, opCheck] of Object.entries(cases)) {
      it(`${op}: ${title}`, async () => {
        const { tensors, rulesRun } = await opGradientCheck(opCheck);
        expect([...rulesRun]).toContain(op);
        for (const r of tensors) {
          expect(r.maxRelativeError, `${r.name} (${r.checked} checks)`).toBeLessThan(TOLERANCE);
          expect(r.maxNoiseRatio, `${r.name}: error in noise units`).toBeLessThan(NOISE_MULTIPLE);
        }
      });
    }
  }
});

async function expectGradientsMatch(module: Module, options: GradCheckOptions) {
  const reports = await gradientCheck(module, options);
  for (const r of reports) {
    expect(r.maxRelativeError, `${r.name} (${r.checked} checks)`).toBeLessThan(TOLERANCE);
    expect(r.maxNoiseRatio, `${r.name}: error in noise units`).toBeLessThan(NOISE_MULTIPLE);
  }
  return reports;
}

/** A flat zero background with a small random patch: max-pool windows over it are full of ties (like MNIST). */
const mostlyBackground = (side: number) => (rng: { next(): number }, length: number) => {
  const data = new Float64Array(length);
  for (let i = 0; i < length; i++) {
    const pixel = i % (side * side);
    const [y, x] = [Math.floor(pixel / side), pixel % side];
    if (y >= 2 && y < 5 && x >= 3 && x < 6) data[i] = rng.next();
  }
  return data;
};

describe('backward', () => {
  /** y = x · c with only x differentiated: Mul's rule computes both gradients. */
  function scaled() {
    const g = new GraphBuilder('scaled');
    for (const name of ['x', 'c', 'dy']) g.input(name, 'FLOAT', [2, 3]);
    return { g, y: g.op('Mul', ['x', 'c']) };
  }

  it('drops the gradients nobody needs, with the nodes that computed them', () => {
    const { g, y } = scaled();
    const dx = backward(g, new Map([[y, 'dy']]), ['x']).get('x');
    // The forward Mul and dx = dy·c; dc = dy·x is gone.
    expect(g.nodes.map((n) => [n.input, n.output])).toEqual([
      [['x', 'c'], [y]],
      [['dy', 'c'], [dx]],
    ]);
  });

  it("rejects a rule that returns a gradient count other than the node's input count", () => {
    const { g, y } = scaled();
    const rules = { ...gradientRules, Mul: (c: Parameters<(typeof gradientRules)['Mul']>[0]) => [dY(c)] };
    expect(() => backward(g, new Map([[y, 'dy']]), ['x'], { rules })).toThrow(/returned 1 gradients .* with 2 inputs/);
  });
});

describe('gradient rules in combination vs float64 finite differences', () => {
  for (const batch of [1, 3]) {
    it(`Conv: stride 2, padding 1, even input needing output_padding (batch ${batch})`, async () => {
      const net = composite(
        'Net',
        { a: conv2d(2, 3, 3, { padding: 1 }), b: conv2d(3, 4, 3, { stride: 2, padding: 1 }), fc: linear(64, 5) },
        (m, x, ctx) => m.fc(F.flatten(ctx, m.b(F.relu(ctx, m.a(x))))),
      );
      await expectGradientsMatch(net, { inputShape: [2, 8, 8], batch });
    });
  }

  it('Conv: stride 3, dilation 2, no bias, odd size (weight gradient cropped)', async () => {
    const net = composite(
      'Net',
      {
        a: conv2d(1, 2, 3, { padding: 1 }),
        b: conv2d(2, 3, 3, { stride: 3, dilation: 2, bias: false }),
        fc: linear(12, 4),
      },
      (m, x, ctx) => m.fc(F.flatten(ctx, m.b(m.a(x)))),
    );
    await expectGradientsMatch(net, { inputShape: [1, 10, 10], batch: 2 });
  });

  it('MaxPool 2×2 through its indices, with ties everywhere in the background', async () => {
    const net = composite(
      'Net',
      { conv: conv2d(1, 3, 3), pool: maxPool2dLayer(2), after: conv2d(3, 2, 1), fc: linear(2 * 3 * 3, 4) },
      (m, x, ctx) => m.fc(F.flatten(ctx, m.after(F.relu(ctx, m.pool(m.conv(x)))))),
    );
    await expectGradientsMatch(net, { inputShape: [1, 8, 8], batch: 3, makeInput: mostlyBackground(8) });
  });

  it('MaxPool with overlapping windows (kernel 3, stride 2, padding 1) and odd size', async () => {
    const net = composite(
      'Net',
      {
        conv: conv2d(2, 3, 3, { padding: 1 }),
        pool: maxPool2dLayer(3, { stride: 2, padding: 1 }),
        fc: linear(3 * 4 * 4, 3),
      },
      (m, x, ctx) => m.fc(F.flatten(ctx, m.pool(m.conv(x)))),
    );
    await expectGradientsMatch(net, { inputShape: [2, 7, 7], batch: 2, makeInput: mostlyBackground(7) });
  });

  it('AveragePool: 3×3 stride 1 pad 1 (count_include_pad), 2×2 stride 2, and count_include_pad=false', async () => {
    const net = composite(
      'Net',
      {
        conv: conv2d(1, 2, 2),
        same: avgPool2dLayer(3, { stride: 1, padding: 1 }),
        half: avgPool2dLayer(2),
        excl: avgPool2dLayer(3, { stride: 2, padding: 1, countIncludePad: false }),
        fc: linear(2 * 2 * 2, 3),
      },
      (m, x, ctx) => m.fc(F.flatten(ctx, m.excl(m.half(m.same(m.conv(x)))))),
    );
    await expectGradientsMatch(net, { inputShape: [1, 9, 9], batch: 3 });
  });

  it('Gemm + Relu chain, odd sizes', async () => {
    const net = composite('Net', { l1: linear(7, 5), l2: linear(5, 3) }, (m, x, ctx) =>
      m.l2(F.relu(ctx, m.l1(F.flatten(ctx, x)))),
    );
    await expectGradientsMatch(net, { inputShape: [7], batch: 3 });
  });

  it('Concat of branches sharing one input (fan-out sums gradients)', async () => {
    const net = composite(
      'Net',
      { a: conv2d(2, 3, 1), b: conv2d(2, 2, 3, { padding: 1 }), c: conv2d(2, 1, 1), fc: linear(6 * 5 * 5, 4) },
      (m, x, ctx) => {
        const pooled = m.c(F.avgPool2d(ctx, x, 3, { stride: 1, padding: 1 }));
        return m.fc(F.flatten(ctx, F.concat(ctx, [m.a(x), m.b(x), pooled])));
      },
    );
    await expectGradientsMatch(net, { inputShape: [2, 5, 5], batch: 2 });
  });

  it('residual Add and constant Scale (Mul)', async () => {
    const net = composite(
      'Net',
      {
        stem: conv2d(1, 3, 3, { padding: 1 }),
        c1: conv2d(3, 3, 3, { padding: 1 }),
        c2: conv2d(3, 3, 3, { padding: 1 }),
        fc: linear(27, 3),
      },
      (m, x, ctx) => {
        const h = m.stem(x);
        const y = m.c2(F.relu(ctx, m.c1(h)));
        return m.fc(F.flatten(ctx, F.relu(ctx, F.scale(ctx, F.add(ctx, h, y), 0.5))));
      },
    );
    await expectGradientsMatch(net, { inputShape: [1, 3, 3], batch: 3 });
  });

  it('BatchNormalization in training mode (batch statistics)', async () => {
    const net = composite(
      'Net',
      // No conv bias: BatchNorm subtracts any per-channel constant, so its true gradient is exactly 0.
      { conv: conv2d(2, 3, 3, { bias: false }), norm: batchNorm2d(3), fc: linear(3 * 3 * 3, 4) },
      (m, x, ctx) => m.fc(F.flatten(ctx, F.relu(ctx, m.norm(m.conv(x))))),
    );
    await expectGradientsMatch(net, { inputShape: [2, 5, 5], batch: 3 });
  });

  it('Dropout with a fixed mask, and label smoothing in the loss', async () => {
    const net = composite('Net', { l1: linear(6, 8), drop: dropout(0.3), l2: linear(8, 4) }, (m, x, ctx) =>
      m.l2(m.drop(F.relu(ctx, m.l1(F.flatten(ctx, x))))),
    );
    await expectGradientsMatch(net, { inputShape: [6], batch: 4, labelSmoothing: 0.1 });
  });
});
