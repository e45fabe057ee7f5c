/**
 * Reverse-mode differentiation over a forward ONNX graph held in a GraphBuilder.
 *
 * Walk the forward nodes from last to first; for each node with a gradient on any output and an
 * input that depends on a parameter, its rule from the table emits the input gradients. A value
 * used several times (a residual's x, an Inception block's input) collects one contribution per use,
 * summed when first needed.
 *
 * What every rule would otherwise repeat is done here once (tinygrad's `compute_gradient`): the
 * check that a rule returns one gradient per input, summing a broadcasting op's gradients down to its
 * inputs' shapes, and dropping the gradients nobody needs (with the nodes that computed them).
 */
import type { GraphBuilder } from '../../onnx/builder.ts';
import type { NodeProto } from '../../onnx/schema.ts';
import type { GradientRule } from './rule.ts';
import { gradientRules } from './rules/index.ts';
import { broadcastShapes, unbroadcast } from './unbroadcast.ts';

export interface BackwardOptions {
  /** The op-type → rule table; defaults to ours. */
  rules?: Record<string, GradientRule>;
  /** Values to keep computing besides the gradients, asked for at the end (what the caller also outputs). */
  keep?: () => Iterable<string>;
  /** Emits the sum of a value's contributions instead of a Sum node, when it returns a name. */
  sum?: (g: GraphBuilder, parts: string[]) => string | undefined;
}

/**
 * Append gradient nodes to `g`. `seeds` gives the gradient of some values (e.g. the logits' from the
 * loss); returns the gradient value of each name in `wrt`.
 *
 * @example
 * const grads = backward(g, new Map([[logits, dLogits]]), ['fc.weight', 'fc.bias']);
 */
export function backward(
  g: GraphBuilder,
  seeds: ReadonlyMap<string, string>,
  wrt: readonly string[],
  { rules = gradientRules, keep = () => [], sum: emitSum }: BackwardOptions = {},
): Map<string, string> {
  const forward = [...g.nodes]; // the rules append to g.nodes; walk only what was there before
  const initializersBefore = g.initializers.length;

  // Which values depend on a parameter we differentiate for.
  const dependent = new Set(wrt);
  for (const node of forward) {
    if (node.input.some((i) => dependent.has(i))) for (const o of node.output) dependent.add(o);
  }

  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string) => contributions.set(value, [...(contributions.get(value) ?? []), grad]);
  for (const [value, grad] of seeds) add(value, grad);

  const total = (value: string): string | undefined => {
    const parts = contributions.get(value);
    if (!parts || parts.length === 0) return undefined;
    if (parts.length === 1) return parts[0];
    const sum = emitSum?.(g, parts) ?? g.op('Sum', parts);
    contributions.set(value, [sum]);
    return sum;
  };

  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k];
    if (!node) continue;
    const needsGrad = node.input.map((i) => i !== '' && dependent.has(i));
    if (!needsGrad.some(Boolean)) continue;
    const dOutputs = node.output.map((o) => (o === '' ? undefined : total(o)));
    if (!dOutputs.some(Boolean)) continue;
    const rule = rules[node.op_type];
    if (!rule) {
      throw new Error(
        `no gradient rule for op '${node.op_type}' (node '${node.name}'); rules exist for: ${Object.keys(rules).sort().join(', ')}`,
      );
    }
    const grads = rule({ g, node, dOutputs, needsGrad });
    if (grads.length !== node.input.length) {
      throw new Error(
        `internal: the ${node.op_type} rule returned ${grads.length} gradients for node '${node.name}' with ${node.input.length} inputs`,
      );
    }
    const resultShape = rule.broadcasts ? node.input.map((name) => g.shapeOf(name)).reduce(broadcastShapes) : [];
    node.input.forEach((name, i) => {
      const grad = grads[i];
      if (!needsGrad[i] || !grad) return;
      add(name, rule.broadcasts ? unbroadcast(g, grad, resultShape, g.shapeOf(name)) : grad);
    });
  }

  const result = new Map<string, string>();
  for (const name of wrt) {
    const grad = total(name);
    if (!grad) throw new Error(`parameter '${name}' does not affect the loss, so it has no gradient`);
    result.set(name, grad);
  }
  removeUnused(g, forward.length, initializersBefore, [...result.values(), ...keep()]);
  return result;
}

/**
 * Remove the nodes appended since `nodesBefore` that nothing in `keep` depends on (gradients a rule
 * computed for inputs that needed none), and the initializers appended since `initializersBefore`
 * that only they used.
 */
function removeUnused(g: GraphBuilder, nodesBefore: number, initializersBefore: number, keep: Iterable<string>): void {
  const needed = new Set(keep);
  const appended = g.nodes.slice(nodesBefore);
  const live = new Set<NodeProto>();
  for (let k = appended.length - 1; k >= 0; k--) {
    const node = appended[k] as NodeProto;
    if (!node.output.some((o) => needed.has(o))) continue;
    live.add(node);
    for (const i of node.input) needed.add(i);
  }
  g.nodes.splice(nodesBefore, appended.length, ...appended.filter((node) => live.has(node)));
  const constants = g.initializers.slice(initializersBefore);
  g.initializers.splice(initializersBefore, constants.length, ...constants.filter((t) => needed.has(t.name ?? '')));
}
