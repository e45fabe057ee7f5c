/** A max-pool's gradient routings, timed in the whole step (step-timing.ts). */
import { gradientRules } from '../../core/autodiff/rules/index.ts';
import {
  CPU_MAX_POOL_GRADIENTS,
  type MaxPoolGeometry,
  type MaxPoolGradient,
  maxPoolRule,
} from '../../core/autodiff/rules/pooling.ts';
import type { Module } from '../../core/model/layers/index.ts';
import { sameGeometry, timeInStep } from './step-timing.ts';
import { timingKey } from './timing.ts';

export function maxPoolKey(geo: MaxPoolGeometry, batch: number): string {
  const { input, kernel, strides, pads } = geo;
  return timingKey('max-pool-gradient in step', CPU_MAX_POOL_GRADIENTS, batch, { in: input, kernel, strides, pads });
}

/** Typical ms per gradient-graph run of `module` with each routing for its pools of geometry `geo`. */
export function timeMaxPoolGradients(
  module: Module,
  geo: MaxPoolGeometry,
  batch: number,
): Promise<Map<MaxPoolGradient, number>> {
  const tables = CPU_MAX_POOL_GRADIENTS.map((routing) => {
    const MaxPool = maxPoolRule((other) => (sameGeometry(other, geo) ? routing : 'unpool'));
    return [routing, { ...gradientRules, MaxPool }] as const;
  });
  return timeInStep(module, batch, new Map(tables));
}
