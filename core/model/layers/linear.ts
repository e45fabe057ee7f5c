/** nn.Linear: y = x·Wᵀ + b as one Gemm (transB=1), weight [out, in] as PyTorch stores it. */
import { int } from '../../../onnx/attributes.ts';
import type { Module } from './module.ts';
import { expectRank } from './shapes.ts';

export interface LinearOptions {
  bias?: boolean;
}

export function linear(inFeatures: number, outFeatures: number, { bias = true }: LinearOptions = {}): Module {
  // PyTorch: kaiming_uniform(a=√5) gives weight bound 1/√fan_in; the bias uses the same bound.
  const bound = 1 / Math.sqrt(inFeatures);
  return {
    type: 'Linear',
    forward(ctx, x) {
      expectRank(x.shape, 1, 'Linear');
      if (x.shape[0] !== inFeatures)
        throw new Error(`Linear(${inFeatures}, ${outFeatures}) got ${x.shape[0]} features`);
      const w = ctx.param('weight', [outFeatures, inFeatures], { kind: 'uniform', bound });
      const inputs = [x.name, w];
      if (bias) inputs.push(ctx.param('bias', [outFeatures], { kind: 'uniform', bound }));
      ctx.countMacs(inFeatures * outFeatures);
      return ctx.value(ctx.graph.op('Gemm', inputs, { transB: int(1) }), [outFeatures]);
    },
  };
}
