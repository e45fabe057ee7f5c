/**
 * Weight gradients left to a kernel outside the graph (the Node CLI's native ones, node/native-kernels.ts):
 * the graph computes everything else and hands out each such node's input X and output gradient dY instead
 * of dW. The rules below stand in for the Conv and Gemm rules: for the nodes chosen they ask the inner rule
 * for the other gradients only, record the node, and return a placeholder name for dW that no node
 * computes — `buildGradientGraph` outputs X and dY in its place.
 */
import type { GradientRule } from '../rule.ts';
import { attrFloat, attrInt, input } from '../rule.ts';
import { convGeometryOf } from './conv.ts';
import type { ConvGeometry } from './conv-weight-gradient.ts';

interface ExternalWeightBase {
  /** The node's weight (a trainable parameter). */
  weight: string;
  /** The node's input X and the gradient of its output dY, as graph values. */
  x: string;
  dY: string;
}

/** A Conv's weight: X [N, C, H, W], dY [N, M, Ho, Wo]. */
export interface ExternalConvWeight extends ExternalWeightBase {
  kind: 'conv';
  geometry: ConvGeometry;
}

/** A fully connected layer's (Gemm, Y = X·Wᵀ + b): X [N, in], dY [N, out], dW = dYᵀ·X [out, in]. */
export interface ExternalLinearWeight extends ExternalWeightBase {
  kind: 'linear';
  inFeatures: number;
  outFeatures: number;
}

export type ExternalWeight = ExternalConvWeight | ExternalLinearWeight;

/** dW's placeholder: a name no node produces. */
export const externalWeightGradName = (weight: string) => `${weight}.external_grad`;

/**
 * `rule` (a Conv rule) with dW left out for the nodes `external` picks whose weight is one of `weights`
 * (parameters no other node reads: the placeholder must not flow on into a sum); they are appended to
 * `recorded`.
 */
export function externalConvWeightRule(
  rule: GradientRule,
  weights: ReadonlySet<string>,
  external: (geometry: ConvGeometry) => boolean,
  recorded: ExternalWeight[],
): GradientRule {
  return (c) => {
    const geometry = convGeometryOf(c.g, c.node);
    const weight = input(c, 1);
    if (!c.needsGrad[1] || !weights.has(weight) || !external(geometry)) return rule(c);
    const grads = rule({ ...c, needsGrad: c.needsGrad.map((need, i) => need && i !== 1) });
    recorded.push({ kind: 'conv', weight, x: input(c, 0), dY: c.dOutputs[0] as string, geometry });
    grads[1] = externalWeightGradName(weight);
    return grads;
  };
}

/**
 * `rule` (a Gemm rule) with dW left out for nn.Linear's form — Y = X·Wᵀ (+ b), X 2-D, W one of `weights`
 * (as for Convs) — where `external` picks the layer by its sizes; other Gemms keep `rule` whole.
 */
export function externalLinearWeightRule(
  rule: GradientRule,
  weights: ReadonlySet<string>,
  external: (inFeatures: number, outFeatures: number) => boolean,
  recorded: ExternalWeight[],
): GradientRule {
  return (c) => {
    const [x, weight] = [input(c, 0), input(c, 1)];
    const linear =
      attrInt(c.node, 'transA', 0) === 0 &&
      attrInt(c.node, 'transB', 0) === 1 &&
      attrFloat(c.node, 'alpha', 1) === 1 &&
      weights.has(weight);
    const shape = c.g.shapeOf(weight);
    if (!c.needsGrad[1] || !linear || shape.length !== 2 || c.g.shapeOf(x).length !== 2) return rule(c);
    const [outFeatures, inFeatures] = shape;
    if (typeof outFeatures !== 'number' || typeof inFeatures !== 'number' || !external(inFeatures, outFeatures))
      return rule(c);
    const grads = rule({ ...c, needsGrad: c.needsGrad.map((need, i) => need && i !== 1) });
    recorded.push({ kind: 'linear', weight, x, dY: c.dOutputs[0] as string, inFeatures, outFeatures });
    grads[1] = externalWeightGradName(weight);
    return grads;
  };
}
