/**
 * Gradient ops computed outside ORT by a native kernel (the Node CLI's, node/native-kernels.ts): a rule
 * emits them as nodes of the domain below, which no ORT session ever sees — `splitAtNativeNodes`
 * (core/training/segments.ts) cuts the graph around them and the runner calls the kernel in between.
 */
import { ints } from '../../onnx/attributes.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import { attrInts } from '../../onnx/read-attributes.ts';
import type { NodeProto } from '../../onnx/schema.ts';
import type { ConvGeometry } from './rules/conv-weight-gradient.ts';

export const NATIVE_DOMAIN = 'mnist.native';

/** dX [N, C, H, W] of a Conv from dY [N, M, Ho, Wo] and W [M, C, kh, kw]. */
export const CONV_INPUT_GRADIENT = 'ConvInputGradient';
/**
 * dX of a k×k, stride-k max-pool from its input X and dY (first maximum of each window); attribute `kernel`,
 * and `relu` = 1 when X is a ReLU's output whose gradient the same pass applies.
 */
export const MAX_POOL_GRADIENT = 'MaxPoolGradient';
/** dX = dY where the ReLU's output Y > 0, from (Y, dY). */
export const RELU_GRADIENT = 'ReluGradient';
/** The sum of two gradient contributions of one value. */
export const GRADIENT_SUM = 'GradientSum';
/** dY times a same-shaped factor (a dropout's mask): a Mul's gradient when the factor needs none. */
export const GRADIENT_PRODUCT = 'GradientProduct';
/** A Conv's dB [M] = Σ over N, H, W of dY. */
export const BIAS_GRADIENT = 'BiasGradient';
/**
 * dX of an AveragePool whose divisor is always the window's area, from dY; attributes `kernel` [kh, kw],
 * `strides`, `pads` [top, left, bottom, right] (each smaller than the kernel) and `input` [C, H, W].
 */
export const AVG_POOL_GRADIENT = 'AvgPoolGradient';
/**
 * A BatchNormalization's dX from (x, γ, mean, variance, dY), the statistics those it normalized by;
 * attributes `epsilon` and `statistics` (1: they are the batch's own, so the gradient goes through them).
 */
export const BATCH_NORM_INPUT_GRADIENT = 'BatchNormInputGradient';
/** A BatchNormalization's dγ [C] = Σ dY·x̂, from (x, mean, variance, dY); attribute `epsilon`. */
export const BATCH_NORM_SCALE_GRADIENT = 'BatchNormScaleGradient';
/** Channels [start, end) of a [N, C, H, W] value: a channel Concat's gradient, piece by piece. */
export const CHANNEL_SLICE = 'ChannelSlice';
/**
 * A Conv's weights W [M, C, kh, kw] in ORT's NCHWc filter layout (core/training/nchwc-convs.ts), zero-padded
 * to [M', C', kh, kw]; attributes `block` and `blocked` (1: OIHWBiBo, the input has at least a block of
 * channels; 0: OIHWBo). A forward op, not a gradient: ORT's Transpose of the same took 5–70 µs per Conv,
 * every step, on every worker.
 */
export const NCHWC_FILTER = 'NchwcFilter';

export const isNative = (node: NodeProto) => node.domain === NATIVE_DOMAIN;

/** Whether a native node makes `value` (so a step that reads it can run natively too, with no ORT return). */
export const madeNatively = (g: GraphBuilder, value: string) =>
  g.nodes.some((node) => isNative(node) && node.output.includes(value));

/** A native node with one output, shaped like `like` (which must have a recorded shape for it to have one). */
export function emitNative(
  g: GraphBuilder,
  op: string,
  inputs: string[],
  shape?: readonly (number | string)[],
  attributes: Parameters<GraphBuilder['op']>[2] = {},
): string {
  const out = g.op(op, inputs, attributes, { domain: NATIVE_DOMAIN });
  if (shape) g.shapes.set(out, [...shape]);
  return out;
}

/** Emit dX = ConvInputGradient(dY, W) for a Conv of geometry `geo`; returns dX's name. */
export function emitNativeConvInputGradient(g: GraphBuilder, dY: string, w: string, geo: ConvGeometry): string {
  return emitNative(g, CONV_INPUT_GRADIENT, [dY, w], ['N', ...geo.input], {
    input: ints(geo.input),
    output: ints(geo.output),
    kernel: ints(geo.kernel),
    strides: ints(geo.strides),
    pads: ints(geo.pads),
    dilations: ints(geo.dilations),
  });
}

/** The geometry a ConvInputGradient node carries. */
export function nativeConvGeometry(node: NodeProto): ConvGeometry {
  const get = (name: string) => attrInts(node, name, []);
  return {
    input: get('input') as ConvGeometry['input'],
    output: get('output') as ConvGeometry['output'],
    kernel: get('kernel') as ConvGeometry['kernel'],
    strides: get('strides') as ConvGeometry['strides'],
    pads: get('pads') as ConvGeometry['pads'],
    dilations: get('dilations') as ConvGeometry['dilations'],
  };
}
