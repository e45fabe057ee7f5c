/** Gradients of ops that only move data: Flatten, Reshape, Concat. */
import { int } from '../../../onnx/attributes.ts';
import { int64Tensor } from '../../../onnx/tensor.ts';
import { attrInt, dY, type GradientRule, input, type RuleContext, staticDim } from '../rule.ts';

/** Reshaping is undone by reshaping the gradient back to the input's (run-time) shape. */
const reshapeBack = (c: RuleContext) => c.g.op('Reshape', [dY(c), c.g.op('Shape', [input(c, 0)])]);

export const Flatten: GradientRule = (c) => [reshapeBack(c)];
/** The target shape (input 1) is data, not differentiable. */
export const Reshape: GradientRule = (c) => [reshapeBack(c), undefined];

/** Concat's gradient is dY split back into the pieces' sizes along the same axis. */
export const Concat: GradientRule = (c) => {
  const rank = c.g.shapeOf(input(c, 0)).length;
  const axis = (attrInt(c.node, 'axis', 0) + rank) % rank;
  const sizes = c.node.input.map((name) => staticDim(c.g.shapeOf(name), axis, `Concat '${c.node.name}'`));
  const split = c.g.constant(int64Tensor([sizes.length], sizes), 'split');
  const pieces = c.g.node('Split', [dY(c), split], { axis: int(axis) }, { outputs: sizes.length });
  return pieces.map((p, i) => (c.needsGrad[i] ? p : undefined));
};
