/**
 * The gradient rule table with steps left to native kernels (core/autodiff/native-ops.ts): Conv input
 * gradients and k×k/stride-k max-pool routings for the geometries `choices` picks, and — wherever their
 * dY already comes from a native node, so that the chain stays outside ORT — those of every other Conv's
 * bias, max-pool, ReLU, and the sum of a value's contributions (`nativeSum`, backward.ts's hook).
 * Where a chain starts it costs a cut in the graph (core/training/segments.ts): the autotuner decides.
 */

import { int, ints, toAttributeProto } from '../../../onnx/attributes.ts';
import type { GraphBuilder } from '../../../onnx/builder.ts';
import {
  BIAS_GRADIENT,
  emitNative,
  emitNativeConvInputGradient,
  GRADIENT_SUM,
  MAX_POOL_GRADIENT,
  madeNatively,
  RELU_GRADIENT,
} from '../native-ops.ts';
import type { GradientRule } from '../rule.ts';
import { dY, input } from '../rule.ts';
import { convGeometryOf } from './conv.ts';
import type { ConvGeometry } from './conv-weight-gradient.ts';
import { type MaxPoolGeometry, maxPoolGeometryOf, tiles } from './pooling.ts';

/** Where native chains start. */
export interface NativeChoices {
  convInputs: (geometry: ConvGeometry) => boolean;
  maxPools: (geometry: MaxPoolGeometry) => boolean;
}

export function nativeRules(table: Record<string, GradientRule>, choices: NativeChoices): Record<string, GradientRule> {
  const { Conv, MaxPool, Relu } = table;
  if (!Conv || !MaxPool || !Relu) throw new Error('internal: the rule table lacks Conv, MaxPool or Relu');
  return {
    ...table,
    Conv: nativeConv(Conv, choices.convInputs),
    MaxPool: nativeMaxPool(MaxPool, choices.maxPools),
    Relu: nativeRelu(Relu),
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

/** backward.ts's `sum` hook: two contributions of which one is native are added natively. */
export function nativeSum(g: GraphBuilder, parts: string[]): string | undefined {
  if (parts.length !== 2 || !parts.some((p) => madeNatively(g, p))) return undefined;
  return emitNative(g, GRADIENT_SUM, parts, g.shapes.get(parts[0] as string));
}
