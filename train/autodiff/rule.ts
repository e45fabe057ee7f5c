/**
 * What a gradient rule sees and returns. A rule differentiates one ONNX node: given the gradients of
 * its outputs, it emits ONNX nodes computing the gradients of its inputs (only those `needsGrad` marks).
 */
import type { Dim, GraphBuilder } from '../../export/onnx/builder.ts';
import type { NodeProto } from '../../export/onnx/schema.ts';

export interface RuleContext {
  g: GraphBuilder;
  node: NodeProto;
  /** Gradient of each output (undefined where no gradient flows back). */
  dOutputs: (string | undefined)[];
  /** Which inputs need a gradient. */
  needsGrad: boolean[];
}

/** Gradient names per input, in input order; undefined for inputs that get none. */
export type GradientRule = (c: RuleContext) => (string | undefined)[];

export { attrFloat, attrInt, attrInts } from '../../export/onnx/read-attributes.ts';

/** The node's first output gradient, which every single-output rule starts from. */
export function dY(c: RuleContext): string {
  const d = c.dOutputs[0];
  if (!d) throw new Error(`internal: ${c.node.op_type} rule called without an output gradient`);
  return d;
}

export function input(c: RuleContext, index: number): string {
  const name = c.node.input[index];
  if (name === undefined) throw new Error(`${c.node.op_type} node '${c.node.name}' has no input ${index}`);
  return name;
}

/** Static per-value dimension, failing with a clear message when it is dynamic. */
export function staticDim(shape: Dim[], axis: number, what: string): number {
  const d = shape[axis];
  if (typeof d !== 'number') throw new Error(`${what}: axis ${axis} must have a static size, got '${String(d)}'`);
  return d;
}
