/**
 * nn.BatchNorm2d. Parameters weight (γ, starts at 1) and bias (β, starts at 0); buffers running_mean (0)
 * and running_var (1), which are state, not trainable. Inference form: BatchNormalization with the
 * running statistics.
 */
import { float } from '../../export/onnx/attributes.ts';
import type { Module } from './module.ts';
import { expectRank } from './shapes.ts';

export interface BatchNormOptions {
  eps?: number;
  /** PyTorch's momentum: running = (1 − m)·running + m·batch. */
  momentum?: number;
}

export interface BatchNorm2dModule extends Module {
  readonly eps: number;
  readonly momentum: number;
}

export function batchNorm2d(
  channels: number,
  { eps = 1e-5, momentum = 0.1 }: BatchNormOptions = {},
): BatchNorm2dModule {
  return {
    type: 'BatchNorm2d',
    eps,
    momentum,
    forward(ctx, x) {
      expectRank(x.shape, 3, 'BatchNorm2d');
      if (x.shape[0] !== channels) throw new Error(`BatchNorm2d(${channels}) got ${x.shape[0]} channels`);
      const gamma = ctx.param('weight', [channels], { kind: 'constant', value: 1 });
      const beta = ctx.param('bias', [channels], { kind: 'constant', value: 0 });
      const mean = ctx.param('running_mean', [channels], { kind: 'constant', value: 0 }, false);
      const variance = ctx.param('running_var', [channels], { kind: 'constant', value: 1 }, false);
      const y = ctx.graph.op('BatchNormalization', [x.name, gamma, beta, mean, variance], { epsilon: float(eps) });
      return { name: y, shape: x.shape };
    },
  };
}
