/**
 * Adversarial digits: the smallest change to an image, each pixel moved by at most ε (L∞, pixels kept in
 * [0, 1]), that makes the model read another digit (untargeted) or a chosen one (targeted).
 * - FGSM (Goodfellow et al., 2015): one step of ε along the sign of the loss's gradient;
 * - PGD (Madry et al., 2018): steps of α along that sign, each projected back into the ε-box.
 * The gradient is the gradient model's (gradient-model.ts) with J = log p(class): untargeted attacks
 * descend log p(the label read now), that is, ascend its cross-entropy; targeted ones ascend log p(target).
 */
import { IMAGE_PIXELS, NUM_CLASSES } from '../contract.ts';
import { argmax } from '../softmax.ts';
import type { GradientSession } from './session.ts';

export type AttackMethod = 'fgsm' | 'pgd';

export interface AttackGoal {
  /** The digit the model reads on the clean image. */
  label: number;
  /** Toward this digit; absent: any other digit. */
  target?: number;
}

export interface AttackResult {
  epsilon: number;
  method: AttackMethod;
  image: Float32Array;
  /** What the model reads on `image`, and its logits. */
  prediction: number;
  logits: Float32Array;
  flipped: boolean;
  /** Gradient runs it took. */
  gradientRuns: number;
}

export interface PgdOptions {
  steps?: number;
  /** Step size as a fraction of ε (Madry's 2.5·ε/steps by default). */
  stepFraction?: number;
}

/** Whether a reading achieves the goal. */
export const achieves = (goal: AttackGoal, prediction: number) =>
  goal.target === undefined ? prediction !== goal.label : prediction === goal.target;

/** The sign each pixel should move: up the target's log-probability, or down the label's. */
async function ascentSign(session: GradientSession, image: Float32Array, goal: AttackGoal): Promise<Float32Array> {
  const targeted = goal.target !== undefined;
  const { inputGradient } = await session.gradients(image, [
    { target: goal.target ?? goal.label, kind: 'log-probability' },
  ]);
  return inputGradient.map((g) => (targeted ? Math.sign(g) : -Math.sign(g)));
}

/** x + ε·direction, clipped to [0, 1]. */
export function step(x: Float32Array, direction: Float32Array, epsilon: number): Float32Array {
  return x.map((v, i) => Math.min(1, Math.max(0, v + epsilon * (direction[i] as number))));
}

async function read(session: GradientSession, image: Float32Array) {
  const logits = await session.logits(image);
  return { logits, prediction: argmax(logits) };
}

export async function fgsm(
  session: GradientSession,
  x: Float32Array,
  goal: AttackGoal,
  epsilon: number,
): Promise<AttackResult> {
  const image = step(x, await ascentSign(session, x, goal), epsilon);
  const { logits, prediction } = await read(session, image);
  return { epsilon, method: 'fgsm', image, prediction, logits, flipped: achieves(goal, prediction), gradientRuns: 1 };
}

/** PGD from the clean image, stopping at the first step whose image achieves the goal. */
export async function pgd(
  session: GradientSession,
  x: Float32Array,
  goal: AttackGoal,
  epsilon: number,
  { steps = 20, stepFraction = 2.5 / steps }: PgdOptions = {},
): Promise<AttackResult> {
  const alpha = stepFraction * epsilon;
  let image = x.slice();
  let last = await read(session, image);
  let runs = 0;
  for (let k = 0; k < steps && !achieves(goal, last.prediction); k++) {
    const moved = step(image, await ascentSign(session, image, goal), alpha);
    runs++;
    // Back into the ε-box around x (and [0, 1], which `step` kept).
    image = moved.map((v, i) => Math.min((x[i] as number) + epsilon, Math.max((x[i] as number) - epsilon, v)));
    last = await read(session, image);
  }
  return { epsilon, method: 'pgd', image, ...last, flipped: achieves(goal, last.prediction), gradientRuns: runs };
}

export interface SearchOptions {
  /** The largest ε tried (pixel units). */
  maxEpsilon?: number;
  /** FGSM: the grid every ε of which is read (in one batch); then bisection between grid points. */
  gridStep?: number;
  /** Bisection steps. */
  bisections?: number;
  pgd?: PgdOptions;
}

export interface SearchResult extends AttackResult {
  /** The largest ε tried that failed: the answer lies in (failedAt, epsilon]. */
  failedAt: number;
}

/**
 * The smallest ε that achieves the goal, to within maxEpsilon / 2^bisections. FGSM's success is not
 * monotone in ε, so FGSM reads a whole grid of ε (one gradient, one batched forward run) and bisects
 * between the last failure and the first success on it; PGD, which is close to monotone, bisects on
 * [0, maxEpsilon] directly. Undefined when even maxEpsilon fails.
 */
export async function smallestEpsilon(
  session: GradientSession,
  x: Float32Array,
  goal: AttackGoal,
  method: AttackMethod,
  { maxEpsilon = 0.5, gridStep = 0.01, bisections = 8, pgd: pgdOptions = {} }: SearchOptions = {},
): Promise<SearchResult | undefined> {
  let [low, high] = [0, maxEpsilon];
  let runs = 0;
  // FGSM's direction does not depend on ε: one gradient serves every ε tried.
  const direction = method === 'fgsm' ? await ascentSign(session, x, goal) : undefined;
  const attack = async (epsilon: number): Promise<AttackResult> => {
    if (!direction) return pgd(session, x, goal, epsilon, pgdOptions);
    const image = step(x, direction, epsilon);
    const { logits, prediction } = await read(session, image);
    return { epsilon, method, image, prediction, logits, flipped: achieves(goal, prediction), gradientRuns: 0 };
  };
  if (direction) {
    runs++;
    const grid = Array.from({ length: Math.round(maxEpsilon / gridStep) }, (_, k) => (k + 1) * gridStep);
    const batch = new Float32Array(grid.length * IMAGE_PIXELS);
    grid.forEach((e, k) => {
      batch.set(step(x, direction, e), k * IMAGE_PIXELS);
    });
    const logits = await session.logits(batch);
    const first = grid.findIndex((_, k) =>
      achieves(goal, argmax(logits.subarray(k * NUM_CLASSES, (k + 1) * NUM_CLASSES))),
    );
    if (first < 0) return undefined;
    [low, high] = [first === 0 ? 0 : (grid[first - 1] as number), grid[first] as number];
  }
  let best = await attack(high);
  runs += best.gradientRuns;
  if (!best.flipped) return undefined;
  for (let k = 0; k < bisections; k++) {
    const mid = (low + high) / 2;
    const tried = await attack(mid);
    runs += tried.gradientRuns;
    if (tried.flipped) [high, best] = [mid, tried];
    else low = mid;
  }
  return { ...best, gradientRuns: runs, failedAt: low };
}
