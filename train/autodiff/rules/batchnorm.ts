/**
 * BatchNormalization in training mode (normalized with the batch's statistics). With x̂ = (x − μ)·σ⁻¹
 * over n = N·H·W elements per channel:
 *   dβ = Σ dY,  dγ = Σ dY·x̂,  dX = γ·σ⁻¹/n · (n·dY − Σ dY − x̂·Σ dY·x̂)
 * μ and σ⁻¹ are recomputed from X: a few reductions, cheap next to the convolutions around them.
 */
import { int, ints } from '../../../export/onnx/attributes.ts';
import { floatTensor, int64Tensor } from '../../../export/onnx/tensor.ts';
import { attrFloat, attrInt, dY, type GradientRule, input, staticDim } from '../rule.ts';

export const BatchNormalization: GradientRule = (c) => {
  if (attrInt(c.node, 'training_mode', 0) !== 1) {
    throw new Error(`BatchNormalization gradient needs training_mode=1 (node '${c.node.name}')`);
  }
  const g = c.g;
  const [x, gamma] = [input(c, 0), input(c, 1)];
  const xShape = g.shapeOf(x);
  const channels = staticDim(xShape, 1, 'BatchNormalization input');
  const perChannel = g.constant(int64Tensor([4], [1, channels, 1, 1]), 'bn_shape');
  const axes = { axes: ints([0, 2, 3]), keepdims: int(1) };
  const eps = g.constant(floatTensor([], [attrFloat(c.node, 'epsilon', 1e-5)]), 'eps');

  const mean = g.op('ReduceMean', [x], axes);
  const centered = g.op('Sub', [x, mean]);
  const variance = g.op('ReduceMean', [g.op('Mul', [centered, centered])], axes);
  const invStd = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, eps])])]);
  const xHat = g.op('Mul', [centered, invStd]);

  const d = dY(c);
  const sumD = g.op('ReduceSum', [d, g.constant(int64Tensor([3], [0, 2, 3]), 'axes')], { keepdims: int(1) });
  const sumDxHat = g.op('ReduceSum', [g.op('Mul', [d, xHat]), g.constant(int64Tensor([3], [0, 2, 3]), 'axes')], {
    keepdims: int(1),
  });
  const toVector = g.constant(int64Tensor([1], [channels]), 'bn_vector');

  let dX: string | undefined;
  if (c.needsGrad[0]) {
    // (dY − mean(dY) − x̂·mean(dY·x̂)) · γ·σ⁻¹ : the n's cancel once the sums become means.
    const meanD = g.op('ReduceMean', [d], axes);
    const meanDxHat = g.op('ReduceMean', [g.op('Mul', [d, xHat])], axes);
    const inner = g.op('Sub', [g.op('Sub', [d, meanD]), g.op('Mul', [xHat, meanDxHat])]);
    const scale = g.op('Mul', [g.op('Reshape', [gamma, perChannel]), invStd]);
    dX = g.op('Mul', [inner, scale]);
  }
  return [
    dX,
    c.needsGrad[1] ? g.op('Reshape', [sumDxHat, toVector]) : undefined,
    c.needsGrad[2] ? g.op('Reshape', [sumD, toVector]) : undefined,
    undefined,
    undefined,
  ];
};
