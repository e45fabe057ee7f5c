/**
 * Learning-rate schedules, evaluated per step (the learning rate is a graph input, so changing it
 * costs nothing):
 * - none: constant;
 * - step: ×0.1 at 50% and 75% of training;
 * - cosine: from lr down to 0 along a half cosine;
 * - onecycle: PyTorch's OneCycleLR (cosine): warm up from lr/25 to lr over the first 30%, then anneal
 *   to lr/(25·10⁴).
 */
export type ScheduleName = 'none' | 'step' | 'cosine' | 'onecycle';
export const SCHEDULES: readonly ScheduleName[] = ['none', 'step', 'cosine', 'onecycle'];

const cosineBetween = (from: number, to: number, t: number) => to + ((from - to) * (1 + Math.cos(Math.PI * t))) / 2;

/** The learning rate for step `step` (0-based) of `totalSteps`. */
export function learningRate(schedule: ScheduleName, lr: number, step: number, totalSteps: number): number {
  const t = Math.min(step / Math.max(totalSteps, 1), 1);
  switch (schedule) {
    case 'none':
      return lr;
    case 'step':
      return lr * (t < 0.5 ? 1 : t < 0.75 ? 0.1 : 0.01);
    case 'cosine':
      return cosineBetween(lr, 0, t);
    case 'onecycle': {
      const warm = 0.3;
      const initial = lr / 25;
      const final = initial / 1e4;
      return t < warm ? cosineBetween(initial, lr, t / warm) : cosineBetween(lr, final, (t - warm) / (1 - warm));
    }
  }
}
