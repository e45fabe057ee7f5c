/**
 * Small hand-built graphs, one op each, for checking gradient rules on their own: odd shapes,
 * broadcasting both ways, scalars, every Gemm transpose, strided/padded/dilated windows.
 */
import { float, int, ints } from '../../onnx/attributes.ts';
import type { GraphBuilder } from '../../onnx/builder.ts';
import { int64Tensor } from '../../onnx/tensor.ts';
import type { OpCase } from './gradcheck.ts';

type Attrs = Parameters<GraphBuilder['op']>[2];

/** One node of `op` on inputs named a, b, c… of the given shapes (all differentiated). */
function opCase(op: string, shapes: number[][], output: number[], attributes: Attrs = {}): OpCase {
  const names = shapes.map((_, i) => String.fromCharCode(97 + i));
  return {
    inputs: Object.fromEntries(names.map((n, i) => [n, shapes[i] as number[]])),
    build: (g) => ({ output: g.op(op, names, attributes), shape: output }),
  };
}

/** A batch-statistics BatchNormalization, emitted as the training form does (see layers/batchnorm2d.ts). */
const batchNormOfBatch: OpCase = {
  inputs: { x: [3, 2, 4, 3], gamma: [2], beta: [2] },
  build: (g) => {
    const axes = { axes: ints([0, 2, 3]), keepdims: int(0) };
    const mean = g.op('ReduceMean', ['x'], axes);
    const centered = g.op('Sub', ['x', g.op('Reshape', [mean, g.constant(int64Tensor([4], [1, 2, 1, 1]))])]);
    const variance = g.op('ReduceMean', [g.op('Mul', [centered, centered])], axes);
    for (const v of [mean, variance]) g.shapes.set(v, [2]);
    return { output: g.op('BatchNormalization', ['x', 'gamma', 'beta', mean, variance]), shape: [3, 2, 4, 3] };
  },
};

/**
 * Per op type, the cases that check its rule alone (gradient-rules.test.ts holds this table to the rule
 * table). An alternative formulation of a rule can run the same cases: `opGradientCheck(c, { rules })`.
 */
export const RULE_CASES: Record<string, Record<string, OpCase>> = {
  Add: {
    '[3,1,5] + [4,1]: each operand broadcast along an axis of the other': opCase(
      'Add',
      [
        [3, 1, 5],
        [4, 1],
      ],
      [3, 4, 5],
    ),
    '[2,3] + scalar': opCase('Add', [[2, 3], []], [2, 3]),
  },
  Sub: {
    '[3,1,5] − [4,1]': opCase(
      'Sub',
      [
        [3, 1, 5],
        [4, 1],
      ],
      [3, 4, 5],
    ),
    '[4,1] − [3,1,5]: the subtrahend is the larger one': opCase(
      'Sub',
      [
        [4, 1],
        [3, 1, 5],
      ],
      [3, 4, 5],
    ),
  },
  Mul: {
    '[2,1,3] · [4,1]': opCase(
      'Mul',
      [
        [2, 1, 3],
        [4, 1],
      ],
      [2, 4, 3],
    ),
    'equal shapes [3,5]': opCase(
      'Mul',
      [
        [3, 5],
        [3, 5],
      ],
      [3, 5],
    ),
  },
  Sum: { '[2,3] + [3] + [2,1]': opCase('Sum', [[2, 3], [3], [2, 1]], [2, 3]) },
  Identity: { '[3,4]': opCase('Identity', [[3, 4]], [3, 4]) },
  Relu: { '[3,7] around 0': opCase('Relu', [[3, 7]], [3, 7]) },
  Softmax: {
    "[3,10] over the classes (a served model's probabilities)": opCase('Softmax', [[3, 10]], [3, 10], { axis: int(1) }),
    '[2,3,4] over the middle axis': opCase('Softmax', [[2, 3, 4]], [2, 3, 4], { axis: int(1) }),
    '[2,5] with the default axis (-1)': opCase('Softmax', [[2, 5]], [2, 5]),
  },
  Reshape: {
    '[2,3,4] → [4,-1]': {
      inputs: { a: [2, 3, 4] },
      build: (g) => ({ output: g.op('Reshape', ['a', g.constant(int64Tensor([2], [4, -1]))]), shape: [4, 6] }),
    },
  },
  Flatten: {
    '[2,3,4] at axis 1': opCase('Flatten', [[2, 3, 4]], [2, 12], { axis: int(1) }),
    '[2,3,4] at axis 2': opCase('Flatten', [[2, 3, 4]], [6, 4], { axis: int(2) }),
  },
  Concat: {
    '[2,1,3] ‖ [2,3,3] ‖ [2,2,3] on axis 1': opCase(
      'Concat',
      [
        [2, 1, 3],
        [2, 3, 3],
        [2, 2, 3],
      ],
      [2, 6, 3],
      {
        axis: int(1),
      },
    ),
    '[2,3] ‖ [2,1] on axis 1': opCase(
      'Concat',
      [
        [2, 3],
        [2, 1],
      ],
      [2, 4],
      { axis: int(1) },
    ),
  },
  MatMul: {
    '[3,4]·[4,5]': opCase(
      'MatMul',
      [
        [3, 4],
        [4, 5],
      ],
      [3, 5],
    ),
    '[1,3]·[3,2]': opCase(
      'MatMul',
      [
        [1, 3],
        [3, 2],
      ],
      [1, 2],
    ),
  },
  Gemm: {
    'A·B + C[5], α 0.7, β 1.3': opCase('Gemm', [[3, 4], [4, 5], [5]], [3, 5], { alpha: float(0.7), beta: float(1.3) }),
    'Aᵀ·B + C[3,1]': opCase(
      'Gemm',
      [
        [4, 3],
        [4, 5],
        [3, 1],
      ],
      [3, 5],
      { transA: int(1), beta: float(0.5) },
    ),
    'A·Bᵀ + C[3,5] (Linear)': opCase(
      'Gemm',
      [
        [3, 4],
        [5, 4],
        [3, 5],
      ],
      [3, 5],
      { transB: int(1) },
    ),
    'Aᵀ·Bᵀ, α 2, no C': opCase(
      'Gemm',
      [
        [4, 3],
        [5, 4],
      ],
      [3, 5],
      { transA: int(1), transB: int(1), alpha: float(2) },
    ),
  },
  Conv: {
    'stride 2, padding 1, bias, 6×5 input': opCase('Conv', [[2, 2, 6, 5], [3, 2, 3, 3], [3]], [2, 3, 3, 3], {
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
    'stride 3, dilation 2, no bias (weight gradient cropped)': opCase(
      'Conv',
      [
        [1, 2, 10, 10],
        [3, 2, 3, 3],
      ],
      [1, 3, 2, 2],
      {
        strides: ints([3, 3]),
        dilations: ints([2, 2]),
      },
    ),
  },
  MaxPool: {
    '2×2 windows (MaxUnpool)': opCase('MaxPool', [[2, 2, 6, 6]], [2, 2, 3, 3], {
      kernel_shape: ints([2, 2]),
      strides: ints([2, 2]),
    }),
    '3×3 stride 2 padding 1, overlapping (ScatterElements)': opCase('MaxPool', [[1, 2, 7, 7]], [1, 2, 4, 4], {
      kernel_shape: ints([3, 3]),
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
  },
  AveragePool: {
    '3×3 stride 2 padding 1, count_include_pad 0': opCase('AveragePool', [[2, 2, 7, 7]], [2, 2, 4, 4], {
      kernel_shape: ints([3, 3]),
      strides: ints([2, 2]),
      pads: ints([1, 1, 1, 1]),
    }),
    '2×2 stride 2, odd size': opCase('AveragePool', [[1, 2, 7, 7]], [1, 2, 3, 3], {
      kernel_shape: ints([2, 2]),
      strides: ints([2, 2]),
    }),
  },
  BatchNormalization: {
    'batch statistics computed from x': batchNormOfBatch,
    'fixed (running) statistics': {
      inputs: { x: [2, 3, 2, 2], gamma: [3], beta: [3] },
      constants: { mean: [3], variance: [3] },
      values: (name, rng, length) =>
        name === 'variance' ? Float64Array.from({ length }, () => rng.uniform(0.5, 2)) : undefined,
      build: (g) => ({
        output: g.op('BatchNormalization', ['x', 'gamma', 'beta', 'mean', 'variance']),
        shape: [2, 3, 2, 2],
      }),
    },
  },
};
