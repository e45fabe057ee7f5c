/**
 * Every gradient formulation the autotuner may choose, against float64 finite differences (the same
 * independent reference as test/gradient-rules.test.ts): Conv weight gradients on geometries that stress
 * each one (padding, stride 2 with output_padding, stride 3 + dilation 2 with a cropped correlation, 1×1,
 * 5×5), and MaxPool's routings on non-overlapping windows full of ties — against finite differences, and
 * exactly against a plain-loop reference where ties sit at nonzero values (MNIST's background after a
 * convolution), which finite differences cannot judge.
 */
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { convRule } from '../core/autodiff/rules/conv.ts';
import { CONV_WEIGHT_GRADIENTS } from '../core/autodiff/rules/conv-weight-gradient.ts';
import { gradientRules } from '../core/autodiff/rules/index.ts';
import { MAX_POOL_GRADIENTS, maxPoolRule } from '../core/autodiff/rules/pooling.ts';
import { composite, conv2d, F, linear, type Module, maxPool2dLayer } from '../core/model/layers/index.ts';
import { Rng } from '../core/random.ts';
import { ints } from '../onnx/attributes.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';
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

/** dX of k×k max-pooling with stride k, by plain loops: each window's dY goes to its first maximal element. */
function firstMaxReference(x: Float32Array, dy: Float32Array, [n, c, h, w]: number[], k: number): Float32Array {
  const [ho, wo] = [Math.floor((h as number) / k), Math.floor((w as number) / k)];
  const dx = new Float32Array(x.length);
  for (let plane = 0; plane < (n as number) * (c as number); plane++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let best = -1;
        for (let a = 0; a < k; a++) {
          for (let b = 0; b < k; b++) {
            const at = plane * (h as number) * (w as number) + (i * k + a) * (w as number) + j * k + b;
            if (best < 0 || (x[at] as number) > (x[best] as number)) best = at;
          }
        }
        dx[best] = (dx[best] as number) + (dy[plane * ho * wo + i * wo + j] as number);
      }
    }
  }
  return dx;
}

describe('MaxPool gradient routings on ties at nonzero values', () => {
  const cases = [
    { shape: [3, 4, 8, 8], k: 2 },
    { shape: [2, 3, 7, 9], k: 2 }, // a row and a column past the last window
    { shape: [2, 2, 9, 9], k: 3 },
  ];
  for (const routing of MAX_POOL_GRADIENTS) {
    it(`${routing}: routes each window's gradient to its first maximum, exactly`, async () => {
      for (const { shape, k } of cases) {
        const [n, c, h, w] = shape as [number, number, number, number];
        const out = [n, c, Math.floor(h / k), Math.floor(w / k)];
        const rng = new Rng(7);
        // Values from {-1, 0.5, 2}: most windows hold ties, many of them at the maximum.
        const x = Float32Array.from({ length: n * c * h * w }, () => [-1, 0.5, 2][rng.int(3)] as number);
        const dy = Float32Array.from({ length: out.reduce((a, b) => a * b, 1) }, () => rng.uniform(-1, 1));
        const g = new GraphBuilder('max_pool_gradient');
        const xIn = g.input('x', 'FLOAT', shape);
        const dyIn = g.input('dy', 'FLOAT', out);
        g.op('MaxPool', [xIn], { kernel_shape: ints([k, k]), strides: ints([k, k]) });
        const node = g.nodes.at(-1);
        if (!node) throw new Error('no MaxPool node');
        const [dx] = maxPoolRule(() => routing)({ g, node, dOutputs: [dyIn], needsGrad: [true] });
        g.output(dx as string, 'FLOAT', shape, 'dx');
        const session = await ort.InferenceSession.create(encodeModel(g.toModel()));
        const result = await session.run({
          x: new ort.Tensor('float32', x, shape),
          dy: new ort.Tensor('float32', dy, out),
        });
        await session.release();
        expect([...((result.dx as ort.Tensor).data as Float32Array)]).toEqual([...firstMaxReference(x, dy, shape, k)]);
      }
    });
  }
});
