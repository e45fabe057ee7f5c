import { ints } from '../../export/onnx/attributes.ts';
import { GraphBuilder } from '../../export/onnx/builder.ts';
import { encodeModel } from '../../export/onnx/codec.ts';
import {
  MAX_POOL_GRADIENTS,
  type MaxPoolGeometry,
  type MaxPoolGradient,
  maxPoolRule,
} from '../autodiff/rules/pooling.ts';
import { randomTensors, timingKey, typicalTimes } from './timing.ts';

export function maxPoolKey(geo: MaxPoolGeometry, batch: number): string {
  const { input, kernel, strides, pads } = geo;
  return timingKey('max-pool-gradient', MAX_POOL_GRADIENTS, batch, { in: input, kernel, strides, pads });
}

export async function timeMaxPoolGradients(geo: MaxPoolGeometry, batch: number): Promise<Map<MaxPoolGradient, number>> {
  const [c, h, w] = geo.input;
  const out = [0, 1].map(
    (i) =>
      Math.floor(
        ((i ? w : h) + (geo.pads[i] ?? 0) + (geo.pads[i + 2] ?? 0) - (geo.kernel[i] ?? 1)) / (geo.strides[i] ?? 1),
      ) + 1,
  );
  const random = randomTensors(1);
  const feeds = { x: random([batch, c, h, w]), dy: random([batch, c, ...out]) };
  const models = new Map<MaxPoolGradient, Uint8Array>();
  for (const routing of MAX_POOL_GRADIENTS) {
    const g = new GraphBuilder(`max_pool_gradient_${routing}`);
    const x = g.input('x', 'FLOAT', [batch, c, h, w]);
    const dy = g.input('dy', 'FLOAT', [batch, c, ...out]);
    g.op('MaxPool', [x], { kernel_shape: ints(geo.kernel), strides: ints(geo.strides), pads: ints(geo.pads) });
    const node = g.nodes.at(-1);
    if (!node) throw new Error('internal: no MaxPool node');
    const [dx] = maxPoolRule(() => routing)({ g, node, dOutputs: [dy], needsGrad: [true] });
    g.output(dx as string, 'FLOAT', [batch, c, h, w], 'dx');
    models.set(routing, encodeModel(g.toModel()));
  }
  return typicalTimes(models, feeds);
}
