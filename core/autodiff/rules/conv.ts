/**
 * Conv (2-D, group 1). With X [N,C,H,W], W [M,C,kh,kw], Y [N,M,Ho,Wo]:
 * - dX = ConvTranspose(dY, W) with the same strides/pads/dilations; output_padding restores the rows
 *   the forward's floor division dropped: (H + 2p − d(k−1) − 1) mod s.
 * - dW: by default swap the batch and channel axes and correlate X with dY (forward dilation ↔ stride
 *   swap): Transpose(Conv(Xᵀ, dYᵀ, strides = dilations, dilations = strides)), cropped to k when the
 *   leftover rows reach a whole extra tap. `convRule(choose)` picks another formulation per node
 *   geometry (conv-weight-gradient.ts; the autotuner's hook).
 * - dB = ΣN,H,W dY.
 */

import { int, ints } from '../../../onnx/attributes.ts';
import type { GraphBuilder } from '../../../onnx/builder.ts';
import type { NodeProto } from '../../../onnx/schema.ts';
import { int64Tensor } from '../../../onnx/tensor.ts';
import { attrInt, attrInts, dY, type GradientRule, input, staticDim } from '../rule.ts';
import {
  type ConvGeometry,
  type ConvWeightGradient,
  emitConvWeightGradient,
  leftoverRows,
} from './conv-weight-gradient.ts';

/** Picks the weight-gradient formulation for a Conv node from its geometry. */
export type ConvWeightGradientChooser = (geometry: ConvGeometry) => ConvWeightGradient;

/** A Conv node's static geometry (its input's and output's shapes must be recorded in `g`). */
export function convGeometryOf(g: GraphBuilder, node: NodeProto): ConvGeometry {
  const [x, w, y] = [node.input[0], node.input[1], node.output[0]] as [string, string, string];
  if (attrInt(node, 'group', 1) !== 1) throw new Error(`Conv gradient supports group = 1 only (node '${node.name}')`);
  const [xShape, wShape, yShape] = [g.shapeOf(x), g.shapeOf(w), g.shapeOf(y)];
  if (xShape.length !== 4) throw new Error(`Conv gradient supports 2-D convolutions only (node '${node.name}')`);
  const dim = (shape: typeof xShape, axis: number, what: string) => staticDim(shape, axis, what);
  return {
    input: [dim(xShape, 1, 'Conv input'), dim(xShape, 2, 'Conv input'), dim(xShape, 3, 'Conv input')],
    output: [dim(yShape, 1, 'Conv output'), dim(yShape, 2, 'Conv output'), dim(yShape, 3, 'Conv output')],
    kernel: [dim(wShape, 2, 'Conv weight'), dim(wShape, 3, 'Conv weight')],
    strides: attrInts(node, 'strides', [1, 1]) as [number, number],
    pads: attrInts(node, 'pads', [0, 0, 0, 0]) as [number, number, number, number],
    dilations: attrInts(node, 'dilations', [1, 1]) as [number, number],
  };
}

/** The Conv rule, with the weight gradient's formulation chosen per node by `choose`. */
export function convRule(choose: ConvWeightGradientChooser = () => 'conv'): GradientRule {
  return (c) => {
    const [x, w] = [input(c, 0), input(c, 1)];
    const geo = convGeometryOf(c.g, c.node);
    const leftover = leftoverRows(geo);
    const d = dY(c);
    const geometry = { strides: ints(geo.strides), pads: ints(geo.pads), dilations: ints(geo.dilations) };
    const dX = c.needsGrad[0]
      ? c.g.op('ConvTranspose', [d, w], { ...geometry, kernel_shape: ints(geo.kernel), output_padding: ints(leftover) })
      : undefined;
    const dW = c.needsGrad[1] ? emitConvWeightGradient(c.g, x, d, geo, choose(geo)) : undefined;
    const dB =
      c.needsGrad[2] && c.node.input[2]
        ? c.g.op('ReduceSum', [d, c.g.constant(int64Tensor([3], [0, 2, 3]), 'axes')], { keepdims: int(0) })
        : undefined;
    return [dX, dW, dB].slice(0, c.node.input.length); // no bias input: no third gradient
  };
}

export const Conv: GradientRule = convRule();
