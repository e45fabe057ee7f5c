/**
 * Every gradient formulation the autotuner may choose, against float64 finite differences (the same
 * independent reference as test/gradient-rules.test.ts): Conv weight gradients on geometries that stress
 * each one (padding, stride 2 with output_padding, stride 3 + dilation 2 with a cropped correlation, 1×1,
 * 5×5), and MaxPool's two routings on non-overlapping windows full of ties.
 */
import { describe, expect, it } from 'vitest';
import { convRule } from '../train/autodiff/rules/conv.ts';
import { CONV_WEIGHT_GRADIENTS } from '../train/autodiff/rules/conv-weight-gradient.ts';
import { gradientRules } from '../train/autodiff/rules/index.ts';
import { MAX_POOL_GRADIENTS, maxPoolRule } from '../train/autodiff/rules/pooling.ts';
import { composite, conv2d, F, linear, type Module, maxPool2dLayer } from '../train/layers/index.ts';
import { gradientCheck } from './helpers/gradcheck.ts';

const TOLERANCE = 1e-3;

const nets: { name: string; inputShape: number[]; build: () => Module }[] = [
  {
    name: 'padding 1, then stride 2 needing output_padding',
    inputShape: [2, 8, 8],
    build: () =>
      composite(
        'Net',
        { a: conv2d(2, 3, 3, { padding: 1 }), b: conv2d(3, 4, 3, { stride: 2, padding: 1 }), fc: linear(64, 5) },
        (m, x, ctx) => m.fc(F.flatten(ctx, m.b(F.relu(ctx, m.a(x))))),
      ),
  },
  {
    name: 'stride 3, dilation 2, odd size (cropped correlation), 1×1',
    inputShape: [1, 9, 9],
    build: () =>
      composite(
        'Net',
        {
          a: conv2d(1, 2, 5, { padding: 2 }),
          b: conv2d(2, 3, 3, { stride: 3, dilation: 2, bias: false }),
          c: conv2d(3, 2, 1),
          fc: linear(8, 4),
        },
        (m, x, ctx) => m.fc(F.flatten(ctx, m.c(m.b(m.a(x))))),
      ),
  },
];

describe('Conv weight-gradient formulations vs float64 finite differences', () => {
  for (const formulation of CONV_WEIGHT_GRADIENTS) {
    for (const net of nets) {
      it(`${formulation}: ${net.name}`, async () => {
        const rules = { ...gradientRules, Conv: convRule(() => formulation) };
        const reports = await gradientCheck(net.build(), { inputShape: net.inputShape, batch: 3, rules });
        expect(reports.length).toBeGreaterThan(0);
        for (const r of reports) expect(r.maxRelativeError, `${r.name} (${r.checked} checks)`).toBeLessThan(TOLERANCE);
      });
    }
  }
});

describe('MaxPool gradient routings vs float64 finite differences', () => {
  for (const routing of MAX_POOL_GRADIENTS) {
    it(`${routing}: 2×2 windows over a mostly flat background (ties go to the first element)`, async () => {
      const net = composite(
        'Net',
        { conv: conv2d(1, 3, 3), pool: maxPool2dLayer(2), fc: linear(3 * 3 * 3, 4) },
        (m, x, ctx) => m.fc(F.flatten(ctx, m.pool(F.relu(ctx, m.conv(x))))),
      );
      // A flat zero background with a small random patch, like MNIST: windows full of ties.
      const makeInput = (rng: { next(): number }, length: number) => {
        const data = new Float64Array(length);
        for (let i = 0; i < length; i++) if (i % 64 >= 18 && i % 64 < 30) data[i] = rng.next();
        return data;
      };
      const rules = { ...gradientRules, MaxPool: maxPoolRule(() => routing) };
      const reports = await gradientCheck(net, { inputShape: [1, 8, 8], batch: 3, rules, makeInput });
      for (const r of reports) expect(r.maxRelativeError, `${r.name} (${r.checked} checks)`).toBeLessThan(TOLERANCE);
    });
  }
});
