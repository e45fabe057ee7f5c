/**
 * Conv (2-D, group 1). With X [N,C,H,W], W [M,C,kh,kw], Y [N,M,Ho,Wo]:
 * - dX = ConvTranspose(dY, W) with the same strides/pads/dilations; output_padding restores the rows
 *   the forward's floor division dropped: (H + 2p − d(k−1) − 1) mod s.
 * - dW: swap the batch and channel axes and correlate X with dY (forward dilation ↔ stride swap):
 *   Transpose(Conv(Xᵀ, dYᵀ, strides = dilations, dilations = strides), [1,0,2,3]), cropped to k when
 *   the leftover rows reach a whole extra tap.
 * - dB = ΣN,H,W dY.
 */
import { int, ints } from '../../../export/onnx/attributes.ts';
import { int64Tensor } from '../../../export/onnx/tensor.ts';
import { attrInt, attrInts, dY, type GradientRule, input, staticDim } from '../rule.ts';

const SWAP_BATCH_CHANNELS = ints([1, 0, 2, 3]);

export const Conv: GradientRule = (c) => {
  const [x, w] = [input(c, 0), input(c, 1)];
  if (attrInt(c.node, 'group', 1) !== 1)
    throw new Error(`Conv gradient supports group = 1 only (node '${c.node.name}')`);
  const xShape = c.g.shapeOf(x);
  const wShape = c.g.shapeOf(w);
  if (xShape.length !== 4) throw new Error(`Conv gradient supports 2-D convolutions only (node '${c.node.name}')`);
  const kernel = [staticDim(wShape, 2, 'Conv weight'), staticDim(wShape, 3, 'Conv weight')];
  const strides = attrInts(c.node, 'strides', [1, 1]);
  const dilations = attrInts(c.node, 'dilations', [1, 1]);
  const pads = attrInts(c.node, 'pads', [0, 0, 0, 0]);
  const size = [staticDim(xShape, 2, 'Conv input'), staticDim(xShape, 3, 'Conv input')];
  // Rows/columns at the end of the input that no output position reached.
  const leftover = [0, 1].map(
    (i) =>
      ((size[i] as number) +
        (pads[i] as number) +
        (pads[i + 2] as number) -
        (dilations[i] as number) * ((kernel[i] as number) - 1) -
        1) %
      (strides[i] as number),
  );
  const d = dY(c);
  const geometry = { strides: ints(strides), pads: ints(pads), dilations: ints(dilations) };

  const dX = c.needsGrad[0]
    ? c.g.op('ConvTranspose', [d, w], { ...geometry, kernel_shape: ints(kernel), output_padding: ints(leftover) })
    : undefined;

  let dW: string | undefined;
  if (c.needsGrad[1]) {
    const xT = c.g.op('Transpose', [x], { perm: SWAP_BATCH_CHANNELS });
    const dT = c.g.op('Transpose', [d], { perm: SWAP_BATCH_CHANNELS });
    let corr = c.g.op('Conv', [xT, dT], { strides: ints(dilations), dilations: ints(strides), pads: ints(pads) });
    if (leftover.some((r, i) => r >= (dilations[i] as number))) {
      const axes = c.g.constant(int64Tensor([2], [2, 3]), 'axes');
      const starts = c.g.constant(int64Tensor([2], [0, 0]), 'starts');
      corr = c.g.op('Slice', [corr, starts, c.g.constant(int64Tensor([2], kernel), 'ends'), axes]);
    }
    dW = c.g.op('Transpose', [corr], { perm: SWAP_BATCH_CHANNELS });
  }

  const dB =
    c.needsGrad[2] && c.node.input[2]
      ? c.g.op('ReduceSum', [d, c.g.constant(int64Tensor([3], [0, 2, 3]), 'axes')], { keepdims: int(0) })
      : undefined;
  return [dX, dW, dB].slice(0, c.node.input.length); // no bias input: no third gradient
};
