/**
 * nn.BatchNorm2d. Parameters weight (γ, starts at 1) and bias (β, starts at 0); buffers running_mean (0)
 * and running_var (1), which are state, not trainable.
 *
 * Inference form: BatchNormalization with the running statistics.
 * Training form: we compute the batch mean and biased variance ourselves and hand them to an
 * inference-mode BatchNormalization — the same numbers as training_mode=1, which we avoid because
 * onnxruntime's training-mode kernel updates the running statistics in place, under the graph's
 * feet (measured: the momentum got applied twice per step). The same statistics feed PyTorch's
 * running update, emitted as state outputs:
 *   running_mean ← (1 − m)·running_mean + m·mean,  running_var ← (1 − m)·running_var + m·var·n/(n − 1)
 * (unbiased variance, n = N·H·W).
 */
import { float, int, ints } from '../../../onnx/attributes.ts';
import { floatTensor, int64Tensor } from '../../../onnx/tensor.ts';
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

/** Batch mean and biased variance per channel ([C] each) of `x` [N, C, H, W]. */
function batchStatistics(ctx: ModelContext, x: Value): { mean: string; variance: string } {
  const g = ctx.graph;
  const channels = x.shape[0] as number;
  const axes = { axes: ints([0, 2, 3]), keepdims: int(0) };
  const mean = g.op('ReduceMean', [x.name], axes);
  const centered = g.op('Sub', [
    x.name,
    g.op('Reshape', [mean, g.constant(int64Tensor([4], [1, channels, 1, 1]), 'bn_shape')]),
  ]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centered, centered])], axes);
  for (const v of [mean, variance]) g.shapes.set(v, [channels]);
  return { mean, variance };
}

/** Emit PyTorch's running-statistics update from a batch's statistics. */
function updateRunningStats(
  ctx: ModelContext,
  x: Value,
  running: { mean: string; variance: string },
  batch: { mean: string; variance: string },
  momentum: number,
): void {
  const g = ctx.graph;
  const [, h, w] = x.shape as [number, number, number];
  // n/(n − 1) with n = N·H·W, N known only at run time.
  const size = g.op('Cast', [g.op('Shape', [x.name], { start: int(0), end: int(1) })], { to: int(1) });
  const n = g.op('Mul', [size, g.constant(floatTensor([1], [h * w]), 'bn_hw')]);
  const correction = g.op('Div', [n, g.op('Sub', [n, g.constant(floatTensor([1], [1]), 'one')])]);
  const keep = g.constant(floatTensor([], [1 - momentum]), 'bn_keep');
  const take = g.constant(floatTensor([], [momentum]), 'bn_momentum');
  const blend = (old: string, value: string) => g.op('Add', [g.op('Mul', [old, keep]), g.op('Mul', [value, take])]);
  ctx.updateState(running.mean, blend(running.mean, batch.mean));
  ctx.updateState(running.variance, blend(running.variance, g.op('Mul', [batch.variance, correction])));
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
      if (!ctx.training) {
        const y = ctx.graph.op('BatchNormalization', [x.name, gamma, beta, mean, variance], { epsilon: float(eps) });
        return ctx.value(y, x.shape);
      }
      const batch = batchStatistics(ctx, x);
      updateRunningStats(ctx, x, { mean, variance }, batch, momentum);
      const y = ctx.graph.op('BatchNormalization', [x.name, gamma, beta, batch.mean, batch.variance], {
        epsilon: float(eps),
      });
      return ctx.value(y, x.shape);
    },
  };
}
