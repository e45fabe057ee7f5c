/** Gradients of elementwise ops: Relu, Add, Sub, Mul (with broadcasting), Identity. */
import { floatTensor } from '../../../export/onnx/tensor.ts';
import { dY, type GradientRule, input } from '../rule.ts';
import { broadcastShapes, unbroadcast } from '../unbroadcast.ts';

/** relu'(x) = [y > 0]: pass dY where the output is positive. */
export const Relu: GradientRule = (c) => {
  const zero = c.g.constant(floatTensor([], [0]), 'zero');
  const positive = c.g.op('Greater', [c.node.output[0] as string, zero]);
  return [c.g.op('Where', [positive, dY(c), zero])];
};

export const Identity: GradientRule = (c) => [dY(c)];

function shapes(c: Parameters<GradientRule>[0]) {
  const a = c.g.shapeOf(input(c, 0));
  const b = c.g.shapeOf(input(c, 1));
  return { a, b, y: broadcastShapes(a, b) };
}

/** d(a + b) = dY, each summed down to its operand's shape. */
export const Add: GradientRule = (c) => {
  const s = shapes(c);
  return [
    c.needsGrad[0] ? unbroadcast(c.g, dY(c), s.y, s.a) : undefined,
    c.needsGrad[1] ? unbroadcast(c.g, dY(c), s.y, s.b) : undefined,
  ];
};

/** d(Σ xᵢ) = dY for every operand, summed down to its shape. */
export const Sum: GradientRule = (c) => {
  const shapes = c.node.input.map((name) => c.g.shapeOf(name));
  const y = shapes.reduce(broadcastShapes);
  return shapes.map((shape, i) => (c.needsGrad[i] ? unbroadcast(c.g, dY(c), y, shape) : undefined));
};

/** d(a − b) = (dY, −dY). */
export const Sub: GradientRule = (c) => {
  const s = shapes(c);
  return [
    c.needsGrad[0] ? unbroadcast(c.g, dY(c), s.y, s.a) : undefined,
    c.needsGrad[1] ? unbroadcast(c.g, c.g.op('Neg', [dY(c)]), s.y, s.b) : undefined,
  ];
};

/** d(a·b) = (dY·b, dY·a). */
export const Mul: GradientRule = (c) => {
  const s = shapes(c);
  const [a, b] = [input(c, 0), input(c, 1)];
  return [
    c.needsGrad[0] ? unbroadcast(c.g, c.g.op('Mul', [dY(c), b]), s.y, s.a) : undefined,
    c.needsGrad[1] ? unbroadcast(c.g, c.g.op('Mul', [dY(c), a]), s.y, s.b) : undefined,
  ];
};
