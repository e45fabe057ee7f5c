/**
 * Softmax along one axis (opset ≥ 13): y = exp(x) / Σ exp(x), so dX = y ⊙ (dY − Σ(dY ⊙ y)), the sum
 * along the same axis. Served models end in one (`probabilities`), so an explanation of a probability
 * differentiates through it.
 */
import { int } from '../../../onnx/attributes.ts';
import { int64Tensor } from '../../../onnx/tensor.ts';
import { attrInt, dY, type GradientRule } from '../rule.ts';

export const Softmax: GradientRule = (c) => {
  const y = c.node.output[0] as string;
  const axis = c.g.constant(int64Tensor([1], [attrInt(c.node, 'axis', -1)]), 'axis');
  const d = dY(c);
  const projected = c.g.op('ReduceSum', [c.g.op('Mul', [d, y]), axis], { keepdims: int(1) });
  return [c.g.op('Mul', [y, c.g.op('Sub', [d, projected])])];
};
