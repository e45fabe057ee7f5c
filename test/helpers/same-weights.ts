/** Runs of one model by different paths (native or not, workers or not) that must end at the same weights. */
import { expect } from 'vitest';
import type { Weights } from '../../core/model/initialize.ts';

/**
 * A checker: its first call records the weights, each later call expects them again to `digits` decimals
 * (float32 rounding differs between paths; BatchNorm amplifies it).
 */
export function sameWeightsAsFirst(digits: number): (weights: Weights) => void {
  const first = new Map<string, Float32Array>();
  return (weights) => {
    for (const [name, value] of weights) {
      const other = first.get(name);
      if (!other) first.set(name, value);
      else for (let i = 0; i < value.length; i++) expect(value[i], name).toBeCloseTo(other[i] as number, digits);
    }
  };
}
