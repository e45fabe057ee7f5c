/**
 * What a gradient rule sees and returns. A rule differentiates one ONNX node: given the gradients of
 * its outputs, it emits ONNX nodes computing the gradients of its inputs (only those `needsGrad` marks).
 */
import type { Dim, GraphBuilder } from '../../onnx/builder.ts';
import type { NodeProto } from '../../onnx/schema.ts';

export interface RuleContext {
  g: GraphBuilder;
  node: NodeProto;
  /** Gradient of each output (undefined where no gradient flows back). */
  dOutputs: (string | undefined)[];
  /** Which inputs need a gradient. */
  needsGrad: boolean[];
}

/**
 * A rule returns one gradient name per input, in input order (undefined for inputs that get none);
 * `backward` checks the count. A rule may return gradients for inputs that need none: `backward`
 * drops them and removes the nodes that computed them.
 */
export interface GradientRule {
  (c: RuleContext): (string | undefined)[];
  /**
   * The op broadcasts its inputs numpy-style (Add, Sub, Mul, Sum): the rule returns gradients in the
   * result's shape and `backward` sums each down to its input's shape.
   */
  readonly broadcasts?: boolean;
}

/** Mark a rule as one for a broadcasting elementwise op (see `GradientRule.broadcasts`). */
export function broadcasting(rule: (c: RuleContext) => (string | undefined)[]): GradientRule {
  return Object.assign(rule, { broadcasts: true });
}

export { attrFloat, attrInt, attrInts } from '../../onnx/read-attributes.ts';

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
