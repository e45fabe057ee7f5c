/** A convolution's weight-gradient formulations, timed in the whole step (step-timing.ts). */
import { convRule } from '../../core/autodiff/rules/conv.ts';
import {
  CONV_WEIGHT_GRADIENTS,
  type ConvGeometry,
  type ConvWeightGradient,
} from '../../core/autodiff/rules/conv-weight-gradient.ts';
import { gradientRules } from '../../core/autodiff/rules/index.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { sameGeometry, timeInStep } from './step-timing.ts';
import { convTimingKey } from './timing.ts';

/** The cache key: everything the timing depends on. */
export function convKey(geo: ConvGeometry, batch: number): string {
  return convTimingKey('conv-weight-gradient in step', CONV_WEIGHT_GRADIENTS, geo, batch);
}

/** Typical ms per gradient-graph run of `module` with each formulation for its convolutions of geometry `geo`. */
export function timeConvWeightGradients(
  module: Module,
  geo: ConvGeometry,
  batch: number,
): Promise<Map<ConvWeightGradient, number>> {
  const tables = CONV_WEIGHT_GRADIENTS.map((formulation) => {
    const Conv = convRule((other) => (sameGeometry(other, geo) ? formulation : 'conv'));
    return [formulation, { ...gradientRules, Conv }] as const;
  });
  return timeInStep(module, batch, new Map(tables));
}
