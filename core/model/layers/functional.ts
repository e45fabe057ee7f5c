/**
 * Parameter-free ops, like torch.nn.functional: they emit ONNX nodes but record no summary row
 * (torchinfo doesn't list F.relu either). The module forms in pooling.ts / activation.ts wrap these.
 */

import { int, ints } from '../../../onnx/attributes.ts';
import { floatTensor, sizeOf } from '../../../onnx/tensor.ts';
import type { ModelContext, Value } from './module.ts';
import { expectRank, windowOutputSize } from './shapes.ts';

export function relu(ctx: ModelContext, x: Value): Value {
  return ctx.value(ctx.graph.op('Relu', [x.name]), x.shape);
}

/** x.view(N, -1): everything after the batch axis in one. */
export function flatten(ctx: ModelContext, x: Value): Value {
  return ctx.value(ctx.graph.op('Flatten', [x.name], { axis: int(1) }), [sizeOf(x.shape)]);
}

function sameShape(a: Value, b: Value, op: string): void {
  if (a.shape.join() !== b.shape.join()) {
    throw new Error(`${op} needs equal shapes, got [${a.shape.join(', ')}] and [${b.shape.join(', ')}]`);
  }
}

/**
 * Residual add x + y. The training form emits Sum, not Add: with graph optimization 'all',
 * onnxruntime fuses Conv + Add (+ Relu) into a FusedConv that takes the residual as its `Z` input and
 * writes over that buffer in place — while the backward pass still reads it (measured: gradients off
 * by ~1% against PyTorch). Sum is not fused; inference keeps Add, where the fusion is safe and fast.
 */
export function add(ctx: ModelContext, a: Value, b: Value): Value {
  sameShape(a, b, 'add');
  return ctx.value(ctx.graph.op(ctx.training ? 'Sum' : 'Add', [a.name, b.name]), a.shape);
}

/** Multiply by a constant, e.g. 0.5 · (x + y). */
export function scale(ctx: ModelContext, x: Value, factor: number): Value {
  const c = ctx.graph.constant(floatTensor([], [factor]), 'scale');
  return ctx.value(ctx.graph.op('Mul', [x.name, c]), x.shape);
}

/** torch.cat(values, dim=1): join along channels. */
export function concat(ctx: ModelContext, values: Value[]): Value {
  const [first] = values;
  if (!first) throw new Error('concat needs at least one value');
  for (const v of values) {
    if (v.shape.slice(1).join() !== first.shape.slice(1).join()) {
      throw new Error(
        `concat needs equal spatial shapes, got ${values.map((u) => `[${u.shape.join(', ')}]`).join(' and ')}`,
      );
    }
  }
  const channels = values.reduce((n, v) => n + (v.shape[0] ?? 0), 0);
  return ctx.value(
    ctx.graph.op(
      'Concat',
      values.map((v) => v.name),
      { axis: int(1) },
    ),
    [channels, ...first.shape.slice(1)],
  );
}

export interface PoolOptions {
  stride?: number;
  padding?: number;
}

function poolShape(x: Value, kernel: number, stride: number, padding: number, op: string): number[] {
  expectRank(x.shape, 3, op);
  const [c, h, w] = x.shape as [number, number, number];
  return [c, windowOutputSize(h, kernel, stride, padding), windowOutputSize(w, kernel, stride, padding)];
}

/** F.max_pool2d; stride defaults to the kernel size as in PyTorch. */
export function maxPool2d(
  ctx: ModelContext,
  x: Value,
  kernel: number,
  { stride = kernel, padding = 0 }: PoolOptions = {},
): Value {
  const shape = poolShape(x, kernel, stride, padding, 'MaxPool2d');
  const y = ctx.graph.op('MaxPool', [x.name], {
    kernel_shape: ints([kernel, kernel]),
    strides: ints([stride, stride]),
    pads: ints([padding, padding, padding, padding]),
  });
  return ctx.value(y, shape);
}

export interface AvgPoolOptions extends PoolOptions {
  /** PyTorch's default is true: padded zeros count in the divisor. */
  countIncludePad?: boolean;
}

/** F.avg_pool2d; stride defaults to the kernel size as in PyTorch. */
export function avgPool2d(
  ctx: ModelContext,
  x: Value,
  kernel: number,
  { stride = kernel, padding = 0, countIncludePad = true }: AvgPoolOptions = {},
): Value {
  const shape = poolShape(x, kernel, stride, padding, 'AvgPool2d');
  const y = ctx.graph.op('AveragePool', [x.name], {
    kernel_shape: ints([kernel, kernel]),
    strides: ints([stride, stride]),
    pads: ints([padding, padding, padding, padding]),
    count_include_pad: int(countIncludePad ? 1 : 0),
  });
  return ctx.value(y, shape);
}
