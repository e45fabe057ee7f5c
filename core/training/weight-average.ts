/**
 * An exponential moving average of the weights (parameters and BatchNorm buffers), the model a run with
 * `--ema <decay>` evaluates and exports: avg ← d·avg + (1 − d)·w after every step, as timm's ModelEma and
 * torch.optim.swa_utils.AveragedModel do. The decay warms up, d = min(decay, (1 + t)/(10 + t)) at step t,
 * so the first steps are not dominated by the random initialization; t is the trainer's step count, so a
 * resumed run continues the same sequence with nothing more to store than the averages.
 */
import type { Weights } from '../model/initialize.ts';

/** The decay at the t-th update (0-based), warmed up as timm does. */
export function averagingDecay(decay: number, t: number): number {
  return Math.min(decay, (1 + t) / (10 + t));
}

export class WeightAverage {
  private constructor(
    readonly decay: number,
    private readonly average: Weights,
  ) {}

  /** Start from `weights` (copied): a new run's initial weights, or the averages a checkpoint kept. */
  static from(decay: number, weights: Weights): WeightAverage {
    if (!(decay > 0 && decay < 1)) throw new Error(`the averaging decay must be in (0, 1), got ${decay}`);
    const copy: Weights = new Map();
    for (const [name, data] of weights) copy.set(name, Float32Array.from(data));
    return new WeightAverage(decay, copy);
  }

  /** Fold in the weights after the step that made `t + 1` steps in all (`t` as `averagingDecay` takes it). */
  update(weights: Weights, t: number): void {
    const d = averagingDecay(this.decay, t);
    for (const [name, avg] of this.average) {
      const w = weights.get(name);
      if (!w || w.length !== avg.length) throw new Error(`internal: no weights of ${avg.length} values for ${name}`);
      // avg + (1 − d)·(w − avg): one multiply per value, and exact when w == avg.
      for (let i = 0; i < avg.length; i++) {
        const a = avg[i] as number;
        avg[i] = a + (1 - d) * ((w[i] as number) - a);
      }
    }
  }

  /** The averaged weights (copies). */
  weights(): Weights {
    const copy: Weights = new Map();
    for (const [name, data] of this.average) copy.set(name, Float32Array.from(data));
    return copy;
  }
}
