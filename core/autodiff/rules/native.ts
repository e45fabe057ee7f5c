/**
 * The gradient rule table with steps left to native kernels (core/autodiff/native-ops.ts): Conv input
 * gradients and k×k/stride-k max-pool routings for the geometries `choices` picks, and — wherever their
 * dY already comes from a native node, so that the chain stays outside ORT — those of every other Conv's
 * bias, max-pool, ReLU, stride-1 average pool, channel Concat, and the sum of a value's contributions
 * (`nativeSum`, backward.ts's hook). An inception block's backward is then one chain: each return to ORT
 * costs a session run and a copy of its outputs (its joins and split were three ORT segments, ~3 ms of a
 * 48 ms step).
 * Where a chain starts it costs a cut in the graph (core/training/segments.ts): the autotuner decides.
 */

import { float, int, ints, toAttributeProto } from '../../../onnx/attributes.ts';
import type { GraphBuilder } from '../../../onnx/builder.ts';
import {
  AVG_POOL_GRADIENT,
  BATCH_NORM_INPUT_GRADIENT,
  BATCH_NORM_SCALE_GRADIENT,
  BIAS_GRADIENT,
  CHANNEL_SLICE,
  emitNative,
  emitNativeConvInputGradient,
  GRADIENT_PRODUCT,
  GRADIENT_SUM,
  MAX_POOL_GRADIENT,
  madeNatively,
  RELU_GRADIENT,
} from '../native-ops.ts';
import type { GradientRule } from '../rule.ts';
import { attrFloat, attrInt, dY, input } from '../rule.ts';
import { convGeometryOf } from './conv.ts';
import type { ConvGeometry } from './conv-weight-gradient.ts';
import { type MaxPoolGeometry, maxPoolGeometryOf, tiles, windowOf } from './pooling.ts';

/** Where native chains start. */
export interface NativeChoices {
  convInputs: (geometry: ConvGeometry) => boolean;
  maxPools: (geometry: MaxPoolGeometry) => boolean;
}

export function nativeRules(table: Record<string, GradientRule>, choices: NativeChoices): Record<string, GradientRule> {
  const { Conv, MaxPool, Relu, AveragePool, Concat, BatchNormalization, Mul } = table;
  if (!Conv || !MaxPool || !Relu || !AveragePool || !Concat || !BatchNormalization || !Mul)
    throw new Error(
      'internal: the rule table lacks Conv, MaxPool, Relu, AveragePool, Concat, BatchNormalization or Mul',
    );
  return {
    ...table,
    Conv: nativeConv(Conv, choices.convInputs),
    MaxPool: nativeMaxPool(MaxPool, choices.maxPools),
    Relu: nativeRelu(Relu),
    AveragePool: nativeAveragePool(AveragePool),
    Concat: nativeConcat(Concat),
    BatchNormalization: nativeBatchNorm(BatchNormalization),
    Mul: nativeMul(Mul),
  };
}

function nativeConv(rule: GradientRule, convInputs: (geometry: ConvGeometry) => boolean): GradientRule {
  return (c) => {
    const geometry = convGeometryOf(c.g, c.node);
    const d = dY(c);
    const dX = c.needsGrad[0] && convInputs(geometry);
    const dB = c.needsGrad[2] === true && madeNatively(c.g, d);
    if (!dX && !dB) return rule(c);
    const grads = rule({ ...c, needsGrad: c.needsGrad.map((need, i) => need && !(i === 0 && dX) && !(i === 2 && dB)) });
    if (dX) grads[0] = emitNativeConvInputGradient(c.g, d, input(c, 1), geometry);
    if (dB) grads[2] = emitNative(c.g, BIAS_GRADIENT, [d], [geometry.output[0]]);
    return grads;
  };
}

function nativeMaxPool(rule: GradientRule, chosen: (geometry: MaxPoolGeometry) => boolean): GradientRule {
  return (c) => {
    const geo = maxPoolGeometryOf(c.g, c.node);
    const d = dY(c);
    if (!tiles(geo) || !(madeNatively(c.g, d) || chosen(geo))) return rule(c);
    const x = input(c, 0);
    return [emitNative(c.g, MAX_POOL_GRADIENT, [x, d], c.g.shapes.get(x), { kernel: ints([geo.kernel[0] as number]) })];
  };
}

function nativeRelu(rule: GradientRule): GradientRule {
  return (c) => {
    const d = dY(c);
    if (!madeNatively(c.g, d)) return rule(c);
    const y = c.node.output[0] as string;
    // pool(relu(x)): the pool's routing, from this ReLU's output, takes the ReLU's mask in the same pass.
    const pool = c.g.nodes.find((n) => n.op_type === MAX_POOL_GRADIENT && n.output[0] === d && n.input[0] === y);
    if (pool) {
      pool.attribute = [...(pool.attribute ?? []), toAttributeProto('relu', int(1))];
      return [d];
    }
    return [emitNative(c.g, RELU_GRADIENT, [y, d], c.g.shapes.get(y))];
  };
}

/** An AveragePool whose divisor is always the window's area (the kernel's case), after a native dY. */
function nativeAveragePool(rule: GradientRule): GradientRule {
  return (c) => {
    const d = dY(c);
    const x = input(c, 0);
    const shape = c.g.shapes.get(x);
    const { kernel, strides, pads } = windowOf(c.node);
    const constantCount = attrInt(c.node, 'count_include_pad', 0) === 1 || pads.every((p) => p === 0);
    const fits =
      kernel.length === 2 &&
      strides.length === 2 &&
      attrInt(c.node, 'ceil_mode', 0) === 0 &&
      pads.every((p, i) => p < (kernel[i % 2] as number)) &&
      shape?.length === 4 &&
      shape.slice(1).every((n) => typeof n === 'number');
    if (!madeNatively(c.g, d) || !fits || !constantCount) return rule(c);
    const input3 = (shape as number[]).slice(1);
    const attributes = { kernel: ints(kernel), strides: ints(strides), pads: ints(pads), input: ints(input3) };
    return [emitNative(c.g, AVG_POOL_GRADIENT, [d], shape, attributes)];
  };
}

/** A Concat along the channels of [N, C, H, W] values, after a native dY: each piece's channels, copied out. */
function nativeConcat(rule: GradientRule): GradientRule {
  return (c) => {
    const d = dY(c);
    const shapes = c.node.input.map((name) => c.g.shapes.get(name));
    const rank = shapes[0]?.length ?? 0;
    const axis = (attrInt(c.node, 'axis', 0) + rank) % Math.max(rank, 1);
    const channels = shapes.map((shape) => shape?.[1]);
    if (!madeNatively(c.g, d) || rank !== 4 || axis !== 1 || !channels.every((n) => typeof n === 'number'))
      return rule(c);
    let start = 0;
    return c.node.input.map((name, i) => {
      const end = start + (channels[i] as number);
      const piece = c.needsGrad[i]
        ? emitNative(c.g, CHANNEL_SLICE, [d], c.g.shapes.get(name), { start: int(start), end: int(end) })
        : undefined;
      start = end;
      return piece;
    });
  };
}

/**
 * A BatchNormalization (training form: x's own statistics as inputs) after a native dY: dX through the
 * statistics, dγ = Σ dY·x̂ and dβ = Σ dY, each one pass over the channel's values instead of ORT's 18 ops.
 */
function nativeBatchNorm(rule: GradientRule): GradientRule {
  return (c) => {
    const d = dY(c);
    const x = input(c, 0);
    const shape = c.g.shapes.get(x);
    if (!madeNatively(c.g, d) || shape?.length !== 4 || attrInt(c.node, 'training_mode', 0) !== 0) return rule(c);
    const [, gamma, , mean, variance] = [0, 1, 2, 3, 4].map((i) => input(c, i)) as string[];
    const epsilon = float(attrFloat(c.node, 'epsilon', 1e-5));
    const statistics = int(c.needsGrad[3] || c.needsGrad[4] ? 1 : 0);
    const channels = [shape[1] as number];
    return [
      c.needsGrad[0]
        ? emitNative(c.g, BATCH_NORM_INPUT_GRADIENT, [x, gamma, mean, variance, d] as string[], shape, {
            epsilon,
            statistics,
          })
        : undefined,
      c.needsGrad[1]
        ? emitNative(c.g, BATCH_NORM_SCALE_GRADIENT, [x, mean, variance, d] as string[], channels, { epsilon })
        : undefined,
      c.needsGrad[2] ? emitNative(c.g, BIAS_GRADIENT, [d], channels) : undefined,
      undefined,
      undefined,
    ];
  };
}

/** x · mask of one shape (a dropout) after a native dY, the mask needing no gradient: dY · mask. */
function nativeMul(rule: GradientRule): GradientRule {
  return (c) => {
    const d = dY(c);
    const [a, b] = [input(c, 0), input(c, 1)];
    const [shapeA, shapeB] = [c.g.shapes.get(a), c.g.shapes.get(b)];
    const same = shapeA !== undefined && shapeB !== undefined && shapeA.join() === shapeB.join();
    if (!madeNatively(c.g, d) || !same || c.needsGrad[0] === c.needsGrad[1]) return rule(c);
    return c.needsGrad[0]
      ? [emitNative(c.g, GRADIENT_PRODUCT, [d, b], shapeA), undefined]
      : [undefined, emitNative(c.g, GRADIENT_PRODUCT, [d, a], shapeB)];
  };
}

/** backward.ts's `sum` hook: contributions of which one is native are added natively, two at a time. */
export function nativeSum(g: GraphBuilder, parts: string[]): string | undefined {
  if (parts.length < 2 || !parts.some((p) => madeNatively(g, p))) return undefined;
  const shape = g.shapes.get(parts[0] as string);
  return parts.slice(1).reduce((sum, part) => emitNative(g, GRADIENT_SUM, [sum, part], shape), parts[0] as string);
}
