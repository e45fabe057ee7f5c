/**
 * Gradients of elementwise ops, one line each beside the op (micrograd style). The broadcasting ones
 * return gradients in the result's shape; `backward` sums each down to its operand's shape.
 */
import { floatTensor } from '../../../onnx/tensor.ts';
import { broadcasting, dY, type GradientRule, input } from '../rule.ts';

/** relu'(x) = [y > 0]: pass dY where the output is positive. */
export const Relu: GradientRule = (c) => {
  const zero = c.g.constant(floatTensor([], [0]), 'zero');
  return [c.g.op('Where', [c.g.op('Greater', [c.node.output[0] as string, zero]), dY(c), zero])];
};

/** d(x) = dY. */
export const Identity: GradientRule = (c) => [dY(c)];

/** d(a + b) = (dY, dY). */
export const Add = broadcasting((c) => [dY(c), dY(c)]);

/** d(Σ xᵢ) = dY for every operand. */
export const Sum = broadcasting((c) => c.node.input.map(() => dY(c)));

/** d(a − b) = (dY, −dY). */
export const Sub = broadcasting((c) => [dY(c), c.g.op('Neg', [dY(c)])]);

/** d(a·b) = (dY·b, dY·a). */
export const Mul = broadcasting((c) => [c.g.op('Mul', [dY(c), input(c, 1)]), c.g.op('Mul', [dY(c), input(c, 0)])]);
