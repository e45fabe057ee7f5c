/**
 * Shared by the tests and the benchmarks (testkit/ belongs to neither).
 * Small ONNX models that break the served-model contract in the ways real files do, built with the
 * project's GraphBuilder: a linear "digit reader" (784 → classes) with a twist each.
 */
import { int, ints } from '../onnx/attributes.ts';
import { GraphBuilder } from '../onnx/builder.ts';
import { encodeModel } from '../onnx/codec.ts';

export interface OddModel {
  /** Batch dimension of the input and outputs: 'N' (dynamic) or a fixed size. */
  batch?: 'N' | number;
  /** Width of the logits the graph computes. */
  classes?: number;
  /** Width the graph declares for its output (a lie when it differs from `classes`). */
  declaredClasses?: number;
  /** Subtract the batch mean: every answer depends on the other images in the batch. */
  mixBatch?: boolean;
  /** Extra outputs, e.g. a second copy of the logits. */
  extraOutputs?: number;
  /** Width the extra outputs declare (a lie when it differs from `classes`). */
  extraDeclared?: number;
  /** Metadata, e.g. { normalization: 'folded …' }. */
  metadata?: Record<string, string>;
  /** The input's name (default 'input'). */
  inputName?: string;
  /** An output 'wide' of this many values per image besides the logits (big answers within the limits). */
  wideOutput?: number;
}

/** A model file (bytes) with a deterministic weight matrix. */
export function oddModel(options: OddModel = {}): Uint8Array {
  const { batch = 'N', classes = 10, mixBatch = false, extraOutputs = 0 } = options;
  const g = new GraphBuilder('odd');
  const x = g.input(options.inputName ?? 'input', 'FLOAT', [batch, 1, 28, 28]);
  const flat = g.op('Flatten', [x], { axis: int(1) });
  const w = g.initializer('w', {
    dataType: 'FLOAT',
    dims: [784, classes],
    data: Float32Array.from({ length: 784 * classes }, (_, i) => Math.sin(i) * 0.05),
  });
  let logits = g.op('MatMul', [flat, w]);
  if (mixBatch) {
    logits = g.op('Sub', [logits, g.op('ReduceMean', [logits], { axes: ints([0]), keepdims: int(1) })]);
  }
  g.output(logits, 'FLOAT', [batch, options.declaredClasses ?? classes], 'logits');
  if (options.wideOutput) {
    const width = options.wideOutput;
    const w2 = g.initializer('w_wide', {
      dataType: 'FLOAT',
      dims: [784, width],
      data: Float32Array.from({ length: 784 * width }, (_, i) => Math.cos(i) * 0.05),
    });
    g.output(g.op('MatMul', [flat, w2]), 'FLOAT', [batch, width], 'wide');
  }
  for (let i = 0; i < extraOutputs; i++)
    g.output(g.op('Identity', [logits]), 'FLOAT', [batch, options.extraDeclared ?? classes], `extra${i}`);
  return encodeModel(g.toModel({ metadata: options.metadata }));
}
