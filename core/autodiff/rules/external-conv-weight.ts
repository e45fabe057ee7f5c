/**
 * Conv weight gradients left to a kernel outside the graph (the Node CLI's native one, node/native/): the
 * graph computes everything else and hands out each such Conv's input X and output gradient dY instead of
 * dW. The rule below stands in for the Conv rule: for the nodes `external` picks it asks the inner rule
 * for dX and dB only, records the node, and returns a placeholder name for dW that no node computes —
 * `buildGradientGraph` outputs X and dY in its place. A Linear layer (Gemm, weight [out, in], transB = 1)
 * is the 1×1 convolution of 1×1 images, dW = dYᵀ·X with the same memory layouts, and goes the same way.
 */
import { attrFloat, attrInt, type GradientRule, input } from '../rule.ts';
import { convGeometryOf } from './conv.ts';
import type { ConvGeometry } from './conv-weight-gradient.ts';

export interface ExternalConvWeight {
  /** The Conv's weight (a trainable parameter). */
  weight: string;
  /** The Conv's input X [N, C, H, W] and the gradient of its output dY [N, M, Ho, Wo], as graph values. */
  x: string;
  dY: string;
  geometry: ConvGeometry;
  /** A Linear layer's: X is [N, in] and dY [N, out], not 4-D (the geometry is the 1×1 convolution's). */
  linear?: boolean;
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
    return withoutWeightGradient(rule, c, geometry, recorded);
  };
}

/** The inner rule's gradients but dW (input 1), recorded for the caller, and dW's placeholder in its place. */
function withoutWeightGradient(
  rule: GradientRule,
  c: Parameters<GradientRule>[0],
  geometry: ConvGeometry,
  recorded: ExternalConvWeight[],
  linear?: boolean,
): ReturnType<GradientRule> {
  const grads = rule({ ...c, needsGrad: c.needsGrad.map((need, i) => need && i !== 1) });
  const weight = input(c, 1);
  recorded.push({ weight, x: input(c, 0), dY: c.dOutputs[0] as string, geometry, ...(linear ? { linear } : {}) });
  grads[1] = externalWeightGradName(weight);
  return grads;
}

/** The 1×1 convolution of 1×1 images that a Linear layer of these sizes is. */
export const linearGeometry = (inFeatures: number, outFeatures: number): ConvGeometry => ({
  input: [inFeatures, 1, 1],
  output: [outFeatures, 1, 1],
  kernel: [1, 1],
  strides: [1, 1],
  pads: [0, 0, 0, 0],
  dilations: [1, 1],
});

/**
 * `rule` (the Gemm rule) with dW left out for the Linear layers `external` picks (Y = X·Wᵀ + b: transB = 1,
 * transA = 0, α = 1, static feature sizes); other Gemms go to `rule` whole.
 */
export function externalLinearWeightRule(
  rule: GradientRule,
  external: (geometry: ConvGeometry) => boolean,
  recorded: ExternalConvWeight[],
): GradientRule {
  return (c) => {
    const node = c.node;
    const linear =
      attrInt(node, 'transA', 0) === 0 && attrInt(node, 'transB', 0) === 1 && attrFloat(node, 'alpha', 1) === 1;
    if (!c.needsGrad[1] || !linear) return rule(c);
    const [x, weight] = [input(c, 0), input(c, 1)];
    const [xShape, wShape] = [c.g.shapeOf(x), c.g.shapeOf(weight)];
    const [outFeatures, inFeatures] = wShape;
    if (xShape.length !== 2 || typeof inFeatures !== 'number' || typeof outFeatures !== 'number') return rule(c);
    const geometry = linearGeometry(inFeatures, outFeatures);
    if (!external(geometry)) return rule(c);
    return withoutWeightGradient(rule, c, geometry, recorded, true);
  };
}
