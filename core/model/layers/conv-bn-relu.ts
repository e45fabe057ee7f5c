/** Conv → BatchNorm → ReLU, the block of the BatchNorm nets. The conv has no bias: BatchNorm's shift replaces it. */
import { batchNorm2d } from './batchnorm2d.ts';
import { conv2d } from './conv2d.ts';
import { relu } from './functional.ts';
import { composite } from './module.ts';

export interface ConvBnReluOptions {
  stride?: number;
  padding?: number;
}

export const convBnRelu = (
  inChannels: number,
  outChannels: number,
  kernel: number,
  { stride = 1, padding = 0 }: ConvBnReluOptions = {},
) =>
  composite(
    'ConvBnReLU',
    { conv: conv2d(inChannels, outChannels, kernel, { stride, padding, bias: false }), bn: batchNorm2d(outChannels) },
    (m, x, ctx) => relu(ctx, m.bn(m.conv(x))),
  );
