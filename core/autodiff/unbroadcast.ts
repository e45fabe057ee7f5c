/**
 * Sum a gradient back down to the shape of a broadcast operand: axes the operand lacks or holds as 1
 * while the result has them larger are reduced (numpy broadcasting, as ONNX's Add/Mul/Sub use).
 */
import { int } from '../../onnx/attributes.ts';
import type { Dim, GraphBuilder } from '../../onnx/builder.ts';
import { int64Tensor } from '../../onnx/tensor.ts';

export function unbroadcast(g: GraphBuilder, grad: string, resultShape: Dim[], operandShape: Dim[]): string {
  if (resultShape.join() === operandShape.join()) return grad;
  const offset = resultShape.length - operandShape.length;
  const axes: number[] = [];
  resultShape.forEach((d, axis) => {
    const own = axis - offset;
    if (own < 0 || (operandShape[own] === 1 && d !== 1)) axes.push(axis);
  });
  let reduced = grad;
  if (axes.length > 0) {
    reduced = g.op('ReduceSum', [grad, g.constant(int64Tensor([axes.length], axes), 'axes')], { keepdims: int(1) });
  }
  if (offset > 0) {
    // Drop the leading axes the operand never had.
    reduced = g.op('Squeeze', [
      reduced,
      g.constant(
        int64Tensor(
          [offset],
          Array.from({ length: offset }, (_, i) => i),
        ),
        'axes',
      ),
    ]);
  }
  return reduced;
}

/** The shape numpy broadcasting gives two operands. */
export function broadcastShapes(a: Dim[], b: Dim[]): Dim[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const x = a[i - (rank - a.length)] ?? 1;
    const y = b[i - (rank - b.length)] ?? 1;
    if (x === 1) return y;
    if (y === 1 || x === y) return x;
    throw new Error(`shapes [${a.join(', ')}] and [${b.join(', ')}] do not broadcast`);
  });
}
