/** nn.Conv2d: square kernel, symmetric padding, stride, dilation, optional bias; weight [out, in, k, k]. */
import { ints } from '../../../onnx/attributes.ts';
import type { Module } from './module.ts';
import { expectRank, windowOutputSize } from './shapes.ts';

export interface Conv2dOptions {
  stride?: number;
  padding?: number;
  dilation?: number;
  bias?: boolean;
}

export function conv2d(
  inChannels: number,
  outChannels: number,
  kernelSize: number,
  { stride = 1, padding = 0, dilation = 1, bias = true }: Conv2dOptions = {},
): Module {
  const fanIn = inChannels * kernelSize * kernelSize;
  const bound = 1 / Math.sqrt(fanIn); // PyTorch's default (kaiming_uniform with a=√5) for weight and bias
  return {
    type: 'Conv2d',
    forward(ctx, x) {
      expectRank(x.shape, 3, 'Conv2d');
      const [c, h, w] = x.shape as [number, number, number];
      if (c !== inChannels) throw new Error(`Conv2d(${inChannels}, ${outChannels}) got ${c} input channels`);
      const outH = windowOutputSize(h, kernelSize, stride, padding, dilation);
      const outW = windowOutputSize(w, kernelSize, stride, padding, dilation);
      const weight = ctx.param('weight', [outChannels, inChannels, kernelSize, kernelSize], { kind: 'uniform', bound });
      const inputs = [x.name, weight];
      if (bias) inputs.push(ctx.param('bias', [outChannels], { kind: 'uniform', bound }));
      ctx.countMacs(outChannels * outH * outW * fanIn);
      const y = ctx.graph.op('Conv', inputs, {
        kernel_shape: ints([kernelSize, kernelSize]),
        strides: ints([stride, stride]),
        pads: ints([padding, padding, padding, padding]),
        dilations: ints([dilation, dilation]),
      });
      return ctx.value(y, [outChannels, outH, outW]);
    },
  };
}
