/**
 * Every gradient rule against float64 finite differences. First each rule on its own, on the small
 * hand-built graphs of helpers/rule-cases.ts (odd shapes, broadcasting both ways, every Gemm
 * transpose), with a check that every rule in the table has some; then backward's own duties; then
 * rules in combination inside small modules: stride 2, padding, dilation, batch 1 and 3, and max-pool
 * windows full of ties. Relative error must stay < 1e-3, and within 10 units of each check's noise.
 */
import { describe, expect, it } from 'vitest';
import { backward } from '../core/autodiff/backward.ts';
import { dY } from '../core/autodiff/rule.ts';
import { gradientRules } from '../core/autodiff/rules/index.ts';
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
} from '../core/model/layers/index.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { type GradCheckOptions, gradientCheck, opGradientCheck } from './helpers/gradcheck.ts';
import { RULE_CASES } from './helpers/rule-cases.ts';

const TOLERANCE = 1e-3;
/**
 * And within this many of its own noise units: σ, our float32 gradient's spread at float32 neighbours
 * of the point, plus the finite difference's uncertainty and one roundoff (see gradient-models.test.ts).
 * Measured: the worst check here uses 3.4 of them.
 */
const NOISE_MULTIPLE = 10;

describe('each gradient rule alone vs float64 finite differences', () => {
  it('every rule in the table has cases in RULE_CASES', () => {
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

  it('AveragePool, stride 1 (its gradient an AveragePool): 2×2 unpadded, and 3×3 pad 1 without count_include_pad', async () => {
    const net = composite(
      'Net',
      {
        conv: conv2d(1, 2, 2),
        plain: avgPool2dLayer(2, { stride: 1 }),
        excl: avgPool2dLayer(3, { stride: 1, padding: 1, countIncludePad: false }),
        fc: linear(2 * 7 * 7, 3),
      },
      (m, x, ctx) => m.fc(F.flatten(ctx, m.excl(m.plain(m.conv(x))))),
    );
    await expectGradientsMatch(net, { inputShape: [1, 9, 9], batch: 3 });
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
