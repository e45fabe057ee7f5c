/**
 * BatchNormalization (inference-mode node: y = γ·(x − μ)·σ⁻¹ + β with σ⁻¹ = 1/√(var + ε)).
 *
 * When μ and var are the batch's own statistics (the training form: they are computed from X, so they
 * depend on the parameters too), the gradient goes through them as well. With x̂ = (x − μ)·σ⁻¹ over
 * the n = N·H·W elements of each channel:
 *   dβ = Σ dY,  dγ = Σ dY·x̂,  dX = γ·σ⁻¹ · (dY − mean(dY) − x̂·mean(dY·x̂))
 * With fixed statistics (running ones), dX = γ·σ⁻¹·dY.
 */
import { int, ints } from '../../../onnx/attributes.ts';
import { floatTensor, int64Tensor } from '../../../onnx/tensor.ts';
import { attrFloat, attrInt, dY, type GradientRule, input, staticDim } from '../rule.ts';

export const BatchNormalization: GradientRule = (c) => {
  if (attrInt(c.node, 'training_mode', 0) !== 0) {
    throw new Error(
      `BatchNormalization gradient expects training_mode=0 with batch statistics as inputs (node '${c.node.name}')`,
    );
  }
  const g = c.g;
  const [x, gamma, , mean, variance] = [0, 1, 2, 3, 4].map((i) => input(c, i)) as [
    string,
    string,
    string,
    string,
    string,
  ];
  const channels = staticDim(g.shapeOf(x), 1, 'BatchNormalization input');
  const perChannel = g.constant(int64Tensor([4], [1, channels, 1, 1]), 'bn_shape');
  const reduceAxes = g.constant(int64Tensor([3], [0, 2, 3]), 'axes');
  const eps = g.constant(floatTensor([], [attrFloat(c.node, 'epsilon', 1e-5)]), 'eps');

  const invStd = g.op('Reshape', [g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [variance, eps])])]), perChannel]);
  const xHat = g.op('Mul', [g.op('Sub', [x, g.op('Reshape', [mean, perChannel])]), invStd]);
  const d = dY(c);
  const dYxHat = g.op('Mul', [d, xHat]);

  let dX: string | undefined;
  if (c.needsGrad[0]) {
    const scale = g.op('Mul', [g.op('Reshape', [gamma, perChannel]), invStd]);
    const batchStatistics = c.needsGrad[3] || c.needsGrad[4];
    if (batchStatistics) {
      const mean4 = { axes: ints([0, 2, 3]), keepdims: int(1) };
      const centeredD = g.op('Sub', [d, g.op('ReduceMean', [d], mean4)]);
      const inner = g.op('Sub', [centeredD, g.op('Mul', [xHat, g.op('ReduceMean', [dYxHat], mean4)])]);
      dX = g.op('Mul', [inner, scale]);
    } else {
      dX = g.op('Mul', [d, scale]);
    }
  }
  const sumOver = (value: string) => g.op('ReduceSum', [value, reduceAxes], { keepdims: int(0) });
  // The statistics' own gradients are folded into dX above.
  return [
    dX,
    c.needsGrad[1] ? sumOver(dYxHat) : undefined,
    c.needsGrad[2] ? sumOver(d) : undefined,
    undefined,
    undefined,
  ];
};
