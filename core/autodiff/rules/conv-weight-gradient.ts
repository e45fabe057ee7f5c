/**
 * Alternative formulations of a 2-D convolution's weight gradient dW[M,C,kh,kw] from X [N,C,H,W] and
 * dY [N,M,Ho,Wo]. They compute the same sums in different orders; which is fastest depends on the shapes
 * (measured: Conv(Xᵀ, dYᵀ) wins for 10→20 5×5 on 12×12, im2col + MatMul for 1→16 5×5 on 28×28), so the
 * autotuner times them per shape (train/autotune/) and the Conv rule builds the winner.
 *
 * - 'conv': swap batch and channel axes and correlate: Transpose(Conv(Xᵀ, dYᵀ)) (forward stride ↔ dilation).
 * - 'im2col': one strided Slice of (padded) X per kernel tap, concatenated to columns [N, C·kh·kw, Ho·Wo];
 *   dW = Σₙ dYₙ · colsₙᵀ as a batched MatMul (ORT fuses the transpose into FusedMatMul) and a ReduceSum.
 * - 'im2col-t': the same columns, multiplied the other way round, Σₙ colsₙ · dYₙᵀ, then transposed —
 *   the transposed operand is dY, smaller than the columns when M < C·kh·kw.
 */

import { int, ints } from '../../../onnx/attributes.ts';
import type { GraphBuilder } from '../../../onnx/builder.ts';
import { int64Tensor } from '../../../onnx/tensor.ts';

export const CONV_WEIGHT_GRADIENTS = ['conv', 'im2col', 'im2col-t'] as const;
export type ConvWeightGradient = (typeof CONV_WEIGHT_GRADIENTS)[number];

/** A Conv node's static geometry: what the formulations (and the autotuner's cache key) depend on. */
export interface ConvGeometry {
  /** Input channels, height, width (the batch may be dynamic). */
  input: [number, number, number];
  /** Output channels, height, width. */
  output: [number, number, number];
  kernel: [number, number];
  strides: [number, number];
  /** Begin-begin-end-end, as ONNX orders them. */
  pads: [number, number, number, number];
  dilations: [number, number];
}

const SWAP_BATCH_CHANNELS = ints([1, 0, 2, 3]);

/** Rows and columns at the end of the (padded) input that no output position reached. */
export function leftoverRows(geo: ConvGeometry): [number, number] {
  const axis = (size: number, begin: number, end: number, dilation: number, kernel: number, stride: number) =>
    (size + begin + end - dilation * (kernel - 1) - 1) % stride;
  return [
    axis(geo.input[1], geo.pads[0], geo.pads[2], geo.dilations[0], geo.kernel[0], geo.strides[0]),
    axis(geo.input[2], geo.pads[1], geo.pads[3], geo.dilations[1], geo.kernel[1], geo.strides[1]),
  ];
}

/** Emit dW for `x` and `d` (dY) with the chosen formulation. */
export function emitConvWeightGradient(
  g: GraphBuilder,
  x: string,
  d: string,
  geo: ConvGeometry,
  formulation: ConvWeightGradient,
): string {
  return formulation === 'conv' ? byConv(g, x, d, geo) : byIm2col(g, x, d, geo, formulation === 'im2col-t');
}

function byConv(g: GraphBuilder, x: string, d: string, geo: ConvGeometry): string {
  const xT = g.op('Transpose', [x], { perm: SWAP_BATCH_CHANNELS });
  const dT = g.op('Transpose', [d], { perm: SWAP_BATCH_CHANNELS });
  let corr = g.op('Conv', [xT, dT], {
    strides: ints(geo.dilations),
    dilations: ints(geo.strides),
    pads: ints(geo.pads),
  });
  // Leftover rows make the correlation longer than the kernel when they cover a whole extra tap: crop.
  const [rows, columns] = leftoverRows(geo);
  if (rows >= geo.dilations[0] || columns >= geo.dilations[1]) {
    const axes = g.constant(int64Tensor([2], [2, 3]), 'axes');
    const starts = g.constant(int64Tensor([2], [0, 0]), 'starts');
    corr = g.op('Slice', [corr, starts, g.constant(int64Tensor([2], geo.kernel), 'ends'), axes]);
  }
  return g.op('Transpose', [corr], { perm: SWAP_BATCH_CHANNELS });
}

function byIm2col(g: GraphBuilder, x: string, d: string, geo: ConvGeometry, transposeDy: boolean): string {
  const [c] = geo.input;
  const [m, ho, wo] = geo.output;
  const [kh, kw] = geo.kernel;
  const [pt, pl, pb, pr] = geo.pads;
  const padded = geo.pads.some((p) => p !== 0)
    ? g.op('Pad', [x, g.constant(int64Tensor([8], [0, 0, pt, pl, 0, 0, pb, pr]), 'pads')])
    : x;
  const axes = g.constant(int64Tensor([2], [2, 3]), 'axes');
  const steps = g.constant(int64Tensor([2], geo.strides), 'steps');
  const unsqueezeAxis = g.constant(int64Tensor([1], [2]), 'tap_axis');
  const taps: string[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const start = [i * geo.dilations[0], j * geo.dilations[1]] as const;
      const end = [start[0] + geo.strides[0] * (ho - 1) + 1, start[1] + geo.strides[1] * (wo - 1) + 1];
      const tap = g.op('Slice', [
        padded,
        g.constant(int64Tensor([2], start), 'starts'),
        g.constant(int64Tensor([2], end), 'ends'),
        axes,
        steps,
      ]);
      taps.push(g.op('Unsqueeze', [tap, unsqueezeAxis]));
    }
  }
  // [N, C, kh·kw, Ho, Wo] → [N, C·kh·kw, Ho·Wo]: the column order matches W's [M, C, kh, kw] layout.
  const stacked = taps.length === 1 ? (taps[0] as string) : g.op('Concat', taps, { axis: int(2) });
  const cols = g.op('Reshape', [stacked, g.constant(int64Tensor([3], [0, c * kh * kw, ho * wo]), 'cols_shape')]);
  const dFlat = g.op('Reshape', [d, g.constant(int64Tensor([3], [0, m, ho * wo]), 'dy_shape')]);
  const batchAxis = g.constant(int64Tensor([1], [0]), 'batch_axis');
  const weightShape = g.constant(int64Tensor([4], [m, c, kh, kw]), 'weight_shape');
  if (!transposeDy) {
    const perSample = g.op('MatMul', [dFlat, g.op('Transpose', [cols], { perm: ints([0, 2, 1]) })]);
    return g.op('Reshape', [g.op('ReduceSum', [perSample, batchAxis], { keepdims: int(0) }), weightShape]);
  }
  const perSample = g.op('MatMul', [cols, g.op('Transpose', [dFlat], { perm: ints([0, 2, 1]) })]);
  const summed = g.op('ReduceSum', [perSample, batchAxis], { keepdims: int(0) });
  return g.op('Reshape', [g.op('Transpose', [summed], { perm: ints([1, 0]) }), weightShape]);
}
