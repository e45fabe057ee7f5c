/**
 * Conv weight gradients left to a kernel outside the graph (the Node CLI's native one, node/native/): the
 * graph computes everything else and hands out each such Conv's input X and output gradient dY instead of
 * dW. The rule below stands in for the Conv rule: for the nodes `external` picks it asks the inner rule
 * for dX and dB only, records the node, and returns a placeholder name for dW that no node computes —
 * `buildGradientGraph` outputs X and dY in its place.
 */
import type { GradientRule } from '../rule.ts';
import { input } from '../rule.ts';
import { convGeometryOf } from './conv.ts';
import type { ConvGeometry } from './conv-weight-gradient.ts';

export interface ExternalConvWeight {
  /** The Conv's weight (a trainable parameter). */
  weight: string;
  /** The Conv's input X [N, C, H, W] and the gradient of its output dY [N, M, Ho, Wo], as graph values. */
  x: string;
  dY: string;
  geometry: ConvGeometry;
}

/** dW's placeholder: a name no node produces. */
export const externalWeightGradName = (weight: string) => `${weight}.external_grad`;

/** `rule` (a Conv rule) with dW left out for the nodes `external` picks; they are appended to `recorded`. */
export function externalConvWeightRule(
  rule: GradientRule,
  external: (geometry: ConvGeometry) => boolean,
  recorded: ExternalConvWeight[],
): GradientRule {
  return (c) => {
    const geometry = convGeometryOf(c.g, c.node);
    if (!c.needsGrad[1] || !external(geometry)) return rule(c);
    const grads = rule({ ...c, needsGrad: c.needsGrad.map((need, i) => need && i !== 1) });
    const weight = input(c, 1);
    recorded.push({ weight, x: input(c, 0), dY: c.dOutputs[0] as string, geometry });
    grads[1] = externalWeightGradName(weight);
    return grads;
  };
}
