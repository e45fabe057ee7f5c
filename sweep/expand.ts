/**
 * A sweep's trial list, deterministic: the same file gives the same list, and trial i's flags depend on
 * i alone (not on the budget or on which machine asks), so a Kubernetes pod with JOB_COMPLETION_INDEX=i
 * runs exactly the local sweep's trial i.
 */
import { Rng } from '../core/random.ts';
import { FLAGS, type Flag, type FlagValue, INTEGER_FLAGS, type TrialFlags } from './flags.ts';
import type { Choice, Range, SweepSpec } from './spec.ts';

export interface Trial {
  index: number;
  /** The trial's run directory under the sweep's folder: trial-000, trial-001, … */
  name: string;
  /** Every flag the trial trains with: base, then its grid point and random draws. */
  flags: TrialFlags;
  /** The searched flags only (the leaderboard's columns). */
  point: TrialFlags;
}

export const trialName = (index: number) => `trial-${String(index).padStart(3, '0')}`;

/** The grid's points in order: flags in FLAGS order, the last one varying fastest. */
export function gridPoints(grid: SweepSpec['grid']): TrialFlags[] {
  let points: TrialFlags[] = [{}];
  for (const flag of FLAGS) {
    const values = grid[flag];
    if (!values) continue;
    points = points.flatMap((point) => values.map((value) => ({ ...point, [flag]: value })));
  }
  return points;
}

/** Trial i's own random stream: a hash of the sweep's seed and i, so no trial's draws depend on another's. */
const trialRng = (seed: number, index: number) =>
  new Rng(Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(index + 1, 0x85ebca77));

/** Three significant digits: commands stay readable (lr 0.00347, not 0.0034712983). */
const readable = (x: number) => {
  // Decays near 1 (ema 0.999–0.9999) keep three digits of 1 − x, or every draw rounds to an end of the range.
  if (x > 0.9 && x < 1) return Number((1 - Number((1 - x).toPrecision(3))).toPrecision(12));
  return Number(x.toPrecision(3));
};

function draw(rng: Rng, flag: Flag, space: Range | Choice): FlagValue {
  if ('values' in space) return space.values[rng.int(space.values.length)] as FlagValue;
  const { min, max, scale } = space;
  const u = rng.next();
  const x = scale === 'log' ? Math.exp(Math.log(min) + u * (Math.log(max) - Math.log(min))) : min + u * (max - min);
  const value = INTEGER_FLAGS.has(flag) ? Math.round(x) : readable(x);
  return Math.min(max, Math.max(min, value));
}

export function expandTrials(spec: SweepSpec): Trial[] {
  const points = gridPoints(spec.grid);
  return Array.from({ length: spec.trials }, (_, index) => {
    const rng = trialRng(spec.seed, index);
    const point: TrialFlags = { ...points[index % points.length] };
    for (const flag of FLAGS) {
      const space = spec.random[flag];
      if (space) point[flag] = draw(rng, flag, space);
    }
    return { index, name: trialName(index), flags: { ...spec.base, ...point }, point };
  });
}
