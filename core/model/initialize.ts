/** Fresh parameter values with PyTorch's default initialization, from a seed. */

import { sizeOf } from '../../onnx/tensor.ts';
import { Rng } from '../random.ts';
import type { ParamSpec } from './layers/index.ts';

export type Weights = Map<string, Float32Array>;

export function initializeWeights(params: readonly ParamSpec[], seed = 0): Weights {
  const rng = new Rng(seed);
  const weights: Weights = new Map();
  for (const p of params) {
    const values = new Float32Array(sizeOf(p.shape));
    const { init } = p;
    if (init.kind === 'constant') values.fill(init.value);
    else for (let i = 0; i < values.length; i++) values[i] = rng.uniform(-init.bound, init.bound);
    weights.set(p.name, values);
  }
  return weights;
}
