/**
 * nn.BatchNorm2d. Parameters weight (γ, starts at 1) and bias (β, starts at 0); buffers running_mean (0)
 * and running_var (1), which are state, not trainable.
 *
 * Inference form: BatchNormalization with the running statistics.
 * Training form: BatchNormalization with training_mode=1 (normalizes with the batch's mean and biased
 * variance), plus PyTorch's running-statistics update as state outputs:
 *   running_mean ← (1 − m)·running_mean + m·mean,  running_var ← (1 − m)·running_var + m·var·n/(n − 1)
 * (unbiased variance, n = N·H·W), which ORT's own optional outputs don't compute.
 */
import { float, int, ints } from '../../export/onnx/attributes.ts';
import { floatTensor, int64Tensor } from '../../export/onnx/tensor.ts';
import type { ModelContext, Module, Value } from './module.ts';
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

/** Emit PyTorch's running-statistics update for a batch `x` [N, C, H, W]. */
function updateRunningStats(ctx: ModelContext, x: Value, mean: string, variance: string, momentum: number): void {
  const g = ctx.graph;
  const [channels, h, w] = x.shape as [number, number, number];
  const axes = { axes: ints([0, 2, 3]), keepdims: int(0) };
  const batchMean = g.op('ReduceMean', [x.name], axes);
  const centered = g.op('Sub', [
    x.name,
    g.op('Reshape', [batchMean, g.constant(int64Tensor([4], [1, channels, 1, 1]), 'bn_shape')]),
  ]);
  const biasedVar = g.op('ReduceMean', [g.op('Mul', [centered, centered])], axes);
  // n/(n − 1) with n = N·H·W, N known only at run time.
  const batch = g.op('Cast', [g.op('Shape', [x.name], { start: int(0), end: int(1) })], { to: int(1) });
  const n = g.op('Mul', [batch, g.constant(floatTensor([1], [h * w]), 'bn_hw')]);
  const correction = g.op('Div', [n, g.op('Sub', [n, g.constant(floatTensor([1], [1]), 'one')])]);
  const keep = g.constant(floatTensor([], [1 - momentum]), 'bn_keep');
  const take = g.constant(floatTensor([], [momentum]), 'bn_momentum');
  const blend = (running: string, batchValue: string) =>
    g.op('Add', [g.op('Mul', [running, keep]), g.op('Mul', [batchValue, take])]);
  ctx.updateState(mean, blend(mean, batchMean));
  ctx.updateState(variance, blend(variance, g.op('Mul', [biasedVar, correction])));
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
      const inputs = [x.name, gamma, beta, mean, variance];
      if (!ctx.training) {
        return ctx.value(ctx.graph.op('BatchNormalization', inputs, { epsilon: float(eps) }), x.shape);
      }
      updateRunningStats(ctx, x, mean, variance, momentum);
      // ORT insists on all three outputs in training mode; its running statistics (biased) go unused.
      const [y] = ctx.graph.node(
        'BatchNormalization',
        inputs,
        { epsilon: float(eps), training_mode: int(1) },
        { outputs: 3 },
      );
      return ctx.value(y as string, x.shape);
    },
  };
}
