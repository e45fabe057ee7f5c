/** Golden numbers printed by the tutorial (§9.3–9.6), reproduced through our ONNX writer and onnxruntime-node. */
import { describe, expect, it } from 'vitest';
import { emitModule } from '../core/model/forward-graph.ts';
import { composite, conv2d, type Module, maxPool2dLayer } from '../core/model/layers/index.ts';
import { moduleModel } from './helpers/layer.ts';
import { runModel } from './helpers/ort.ts';

// The tutorial's 5×5 input and its kernel 1..9 (torch.Tensor([1..9]).view(1, 1, 3, 3)).
const INPUT = [3, 4, 6, 5, 7, 2, 4, 6, 8, 2, 1, 6, 7, 8, 4, 9, 7, 4, 6, 2, 3, 7, 5, 4, 1];
const KERNEL = [1, 2, 3, 4, 5, 6, 7, 8, 9];

async function run(module: Module, inputShape: number[], input: number[], weights: Record<string, number[]> = {}) {
  const { model } = moduleModel(module, inputShape, weights);
  const out = await runModel(model, { input: { dims: [1, ...inputShape], data: Float32Array.from(input) } });
  return out.output as unknown as { dims: readonly number[]; data: Float32Array };
}

const macsOf = (module: Module, inputShape: number[]) => emitModule(module, inputShape).ctx.macs;

describe('tutorial golden numbers', () => {
  it('Conv2d(5, 10, 3) on [1,5,100,100]: weight [10,5,3,3], output [1,10,98,98]', async () => {
    const layer = conv2d(5, 10, 3);
    expect(emitModule(layer, [5, 100, 100]).ctx.params.map((p) => [p.name, p.shape])).toEqual([
      ['weight', [10, 5, 3, 3]],
      ['bias', [10]],
    ]);
    const weights = { weight: new Array(10 * 5 * 9).fill(0.01), bias: new Array(10).fill(0.5) };
    const output = await run(layer, [5, 100, 100], new Array(5 * 100 * 100).fill(1), weights);
    expect(output.dims).toEqual([1, 10, 98, 98]);
    expect(output.data[0]).toBeCloseTo(0.95, 5); // 5 channels × 9 taps × 0.01 + bias 0.5
  });

  it('kernel 1..9 with padding 1 and no bias', async () => {
    const output = await run(conv2d(1, 1, 3, { padding: 1, bias: false }), [1, 5, 5], INPUT, { weight: KERNEL });
    expect(output.dims).toEqual([1, 1, 5, 5]);
    expect(Array.from(output.data)).toEqual([
      91, 168, 224, 215, 127, 114, 211, 295, 262, 149, 192, 259, 282, 214, 122, 194, 251, 253, 169, 86, 96, 112, 110,
      68, 31,
    ]);
  });

  it('kernel 1..9 with stride 2 and no padding', async () => {
    const output = await run(conv2d(1, 1, 3, { stride: 2, bias: false }), [1, 5, 5], INPUT, { weight: KERNEL });
    expect(output.dims).toEqual([1, 1, 2, 2]);
    expect(Array.from(output.data)).toEqual([211, 262, 251, 169]);
  });

  it('MaxPool2d(2) on the 4×4 example', async () => {
    const output = await run(maxPool2dLayer(2), [1, 4, 4], [3, 4, 6, 5, 2, 4, 6, 8, 1, 6, 7, 8, 9, 7, 4, 6]);
    expect(output.dims).toEqual([1, 1, 2, 2]);
    expect(Array.from(output.data)).toEqual([4, 8, 9, 8]);
  });

  it('the 1×1 convolution cost example (§9.6)', () => {
    expect(macsOf(conv2d(192, 32, 5, { padding: 2 }), [192, 28, 28])).toBe(120_422_400);
    const bottleneck = composite(
      'Bottleneck',
      { reduce: conv2d(192, 16, 1), conv: conv2d(16, 32, 5, { padding: 2 }) },
      (m, x) => m.conv(m.reduce(x)),
    );
    // 1²·28²·192·16 + 5²·28²·16·32 = 2,408,448 + 10,035,200. The tutorial prints 12,433,648, an addition slip.
    expect(macsOf(bottleneck, [192, 28, 28])).toBe(12_443_648);
  });
});
