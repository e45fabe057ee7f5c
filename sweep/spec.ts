/**
 * A sweep file (YAML or JSON): a base recipe of train flags, a grid and/or random ranges over flags, a
 * trial budget. Validated with zod; any mistake is one line naming the field (`grid.lr[1]: …`).
 */
import { parse } from 'yaml';
import { z } from 'zod';
import { dropoutRefusal, type ModelName } from '../core/model/zoo/index.ts';
import { RECIPES, type RecipeName } from '../core/training/recipes.ts';
import { SPLIT_SIZE } from '../node/mnist.ts';
import { readRegularFile, UnreadableFileError } from '../node/regular-file.ts';
import { FLAG_VALUES, FLAGS, type Flag, type FlagValue, NUMERIC_FLAGS, type TrialFlags } from './flags.ts';

/** The grid's points: the product of each flag's value count. */
const gridSize = (grid: Record<string, unknown[] | undefined>) =>
  Object.values(grid).reduce((n, values) => n * (values?.length ?? 1), 1);

/** Trials one sweep may have: every trial is a training run (and a Kubernetes pod). */
export const MAX_TRIALS = 10_000;

/** A random range over a numeric flag; `log` draws uniformly in log space (learning rates, weight decay). */
export interface Range {
  min: number;
  max: number;
  scale: 'linear' | 'log';
}
/** A random choice among values, each equally likely. */
export interface Choice {
  values: FlagValue[];
}

export interface SweepSpec {
  /** Names the sweep's folder (runs/sweeps/<name>) and its Kubernetes objects: a DNS label. */
  name: string;
  description?: string;
  /** Flags every trial gets. */
  base: TrialFlags;
  /** Every combination of these values (the last flag varies fastest). */
  grid: Partial<Record<Flag, FlagValue[]>>;
  /** Drawn for each trial from its own seeded stream, in FLAGS order. */
  random: Partial<Record<Flag, Range | Choice>>;
  /** How many trials: the grid's size when only a grid is given. */
  trials: number;
  /** Seeds the random draws (not the training: that is the `seed` flag). */
  seed: number;
}

const valuesOf = (flag: Flag) => FLAG_VALUES[flag] as z.ZodType<FlagValue>;

function rangeOf(flag: Flag) {
  const value = valuesOf(flag) as z.ZodType<number>;
  return z
    .strictObject({ min: value, max: value, scale: z.enum(['linear', 'log']).default('linear') })
    .refine((r) => r.min < r.max, { message: 'min must be below max', path: ['max'] })
    .refine((r) => r.scale === 'linear' || r.min > 0, { message: 'a log scale needs min > 0', path: ['min'] });
}

const choiceOf = (flag: Flag) => z.strictObject({ values: z.array(valuesOf(flag)).min(1) });

/** An object whose keys are flags, each value checked by that flag's schema; unknown keys are refused. */
const perFlag = <T>(schemaFor: (flag: Flag) => z.ZodType<T>) =>
  z.strictObject(Object.fromEntries(FLAGS.map((f) => [f, schemaFor(f).optional()]))) as unknown as z.ZodType<
    Partial<Record<Flag, T>>
  >;

const fileSchema = z
  .strictObject({
    name: z
      .string()
      .max(40)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'lowercase letters, digits and inner dashes (a Kubernetes name)'),
    description: z.string().optional(),
    base: perFlag(valuesOf).default({}),
    grid: perFlag((f) => z.array(valuesOf(f)).min(1)).default({}),
    random: perFlag<Range | Choice>((f) =>
      NUMERIC_FLAGS.includes(f) ? z.union([rangeOf(f), choiceOf(f)]) : choiceOf(f),
    ).default({}),
    trials: z.number().int().positive().max(MAX_TRIALS, `at most ${MAX_TRIALS} trials in one sweep`).optional(),
    seed: z.number().int().nonnegative().default(0),
  })
  .superRefine((spec, ctx) => {
    const grid = Object.keys(spec.grid);
    const random = Object.keys(spec.random);
    for (const flag of grid)
      if (flag in spec.base) ctx.addIssue({ code: 'custom', path: ['grid', flag], message: 'also set in base' });
    for (const flag of random)
      if (flag in spec.base || grid.includes(flag))
        ctx.addIssue({ code: 'custom', path: ['random', flag], message: 'also set in base or grid' });
    heldOutIssues(spec, ctx);
    dropoutIssues(spec, ctx);
    plainEpochsIssues(spec, ctx);
    const points = gridSize(spec.grid);
    // Checked before anything expands the grid: a 600-byte file of 7 flags × 10 values is 10⁷ trials.
    if (points > MAX_TRIALS)
      ctx.addIssue({
        code: 'custom',
        path: ['grid'],
        message: `${points} points: at most ${MAX_TRIALS} trials in one sweep (split it, or sample with random ranges)`,
      });
    else if (grid.length === 0 && random.length === 0)
      ctx.addIssue({ code: 'custom', path: ['grid'], message: 'nothing to sweep: give a grid or random ranges' });
    else if (random.length > 0 && spec.trials === undefined)
      ctx.addIssue({ code: 'custom', path: ['trials'], message: 'required with random ranges (the trial budget)' });
    else if (random.length === 0 && spec.trials !== undefined && spec.trials > points)
      ctx.addIssue({
        code: 'custom',
        path: ['trials'],
        message: `${spec.trials} is more than the grid's ${points} points (add random ranges to draw more)`,
      });
  });

type SpecParts = Pick<SweepSpec, 'base' | 'grid' | 'random'>;

/** The part of a sweep file that sets `flag` (only one may), or undefined. */
const partSetting = (spec: SpecParts, flag: Flag) => (['base', 'grid', 'random'] as const).find((p) => flag in spec[p]);

/** MNIST's training images: what --validation holds out of. */
const TRAINING_IMAGES = SPLIT_SIZE.train;

/**
 * Trials are ranked on their held-out images, so every trial must hold out the same ones: the last
 * `validation` training images, a number set in base (searching it would give each trial its own, and train
 * some on images others are ranked on). `limit` then takes the first images of the rest.
 */
function heldOutIssues(spec: SpecParts, ctx: z.RefinementCtx): void {
  for (const part of ['grid', 'random'] as const)
    if ('validation' in spec[part])
      ctx.addIssue({
        code: 'custom',
        path: [part, 'validation'],
        message: 'set it in base: trials ranked together must hold out the same images',
      });
  const { validation } = spec.base;
  if (validation === undefined) return;
  const left = TRAINING_IMAGES - Number(validation);
  if (left < 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['base', 'validation'],
      message: `must be below the ${TRAINING_IMAGES} training images it holds out of`,
    });
    return;
  }
  // The largest limit any trial can get, from whichever part sets it (only one may).
  const most = boundAcrossTrials(spec, 'limit', 'max');
  if (most !== undefined && most > left)
    ctx.addIssue({
      code: 'custom',
      path: [partSetting(spec, 'limit') ?? 'base', 'limit'],
      message: `at most ${left}: the training images left beside validation's ${validation}`,
    });
}

/** The values `flag` takes across trials: base's, the grid's or a random choice's; undefined where none sets it. */
function valuesAcrossTrials(spec: SpecParts, flag: Flag): FlagValue[] | undefined {
  const base = spec.base[flag];
  if (base !== undefined) return [base];
  const random = spec.random[flag];
  return spec.grid[flag] ?? (random && 'values' in random ? random.values : undefined);
}

/**
 * `dropout` only for models that have dropout layers, checked for every model a trial can get (its own, or
 * its recipe's): train refuses the rest, and a sweep should not find out one trial at a time.
 */
function dropoutIssues(spec: SpecParts, ctx: z.RefinementCtx): void {
  const part = partSetting(spec, 'dropout');
  if (!part) return;
  const recipes = recipesAcrossTrials(spec);
  const models = (valuesAcrossTrials(spec, 'model') ?? recipes.map((r) => RECIPES[r].config.model)) as ModelName[];
  const refusal = dropoutRefusal(models);
  if (refusal) ctx.addIssue({ code: 'custom', path: [part, 'dropout'], message: refusal });
}

/** The recipes trials can have: the file's, else train's default (the tutorial's). */
const recipesAcrossTrials = (spec: SpecParts) => (valuesAcrossTrials(spec, 'recipe') ?? ['tutorial']) as RecipeName[];

/** The largest (or smallest) value `flag` can take across trials, a random range's bound included. */
function boundAcrossTrials(spec: SpecParts, flag: Flag, bound: 'max' | 'min'): number | undefined {
  const random = spec.random[flag];
  const values = valuesAcrossTrials(spec, flag) ?? (random && !('values' in random) ? [random[bound]] : undefined);
  return values && Math[bound](...values.map(Number));
}

/**
 * `plain-epochs` only where every trial augments (its recipe or `augment`, or elastic or erase above 0 in
 * every trial) and never more than a trial's epochs: train refuses the rest, one trial at a time.
 */
function plainEpochsIssues(spec: SpecParts, ctx: z.RefinementCtx): void {
  const part = partSetting(spec, 'plain-epochs');
  if (!part) return;
  const path = [part, 'plain-epochs'];
  const plain = boundAcrossTrials(spec, 'plain-epochs', 'max') ?? 0;
  const recipes = recipesAcrossTrials(spec);
  const epochs = boundAcrossTrials(spec, 'epochs', 'min') ?? Math.min(...recipes.map((r) => RECIPES[r].config.epochs));
  if (plain > epochs)
    ctx.addIssue({ code: 'custom', path, message: `${plain} is more than the ${epochs} epochs a trial can have` });
  const augments = valuesAcrossTrials(spec, 'augment');
  const unaugmented = recipes.some((r) => !(augments ?? [RECIPES[r].config.augment]).every(Boolean));
  // Elastic distortion or erasing augments every trial only where no trial has it at 0.
  const otherwise = (['elastic', 'erase'] as const).some((f) => (boundAcrossTrials(spec, f, 'min') ?? 0) > 0);
  if (plain > 0 && unaugmented && !otherwise)
    ctx.addIssue({
      code: 'custom',
      path,
      message: 'a trial has no augmentation to leave out (augment, elastic or erase)',
    });
}

const issuePath = (path: PropertyKey[]) =>
  path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i === 0 ? '' : '.'}${String(p)}`)).join('') || '(top)';

/** Validate a parsed sweep file; `source` names it in the error. */
export function parseSweep(data: unknown, source: string): SweepSpec {
  const result = fileSchema.safeParse(data);
  if (!result.success) {
    const [issue] = result.error.issues;
    throw new Error(`${source}: ${issue ? `${issuePath(issue.path)}: ${issue.message}` : 'invalid sweep file'}`);
  }
  const spec = result.data;
  return { ...spec, trials: spec.trials ?? gridSize(spec.grid) } as SweepSpec;
}

/** A sweep file is a few lines; Kubernetes' ConfigMap that carries it holds at most 1 MiB. */
const MAX_SWEEP_FILE_BYTES = 1024 * 1024;

/** The sweep file's own text (what the Kubernetes ConfigMap carries) and its validated spec. */
export async function readSweepFile(path: string): Promise<{ text: string; spec: SweepSpec }> {
  let text: string;
  try {
    // A regular file of bounded size: a FIFO or /dev/zero is refused unread, never waited on.
    text = (await readRegularFile(path, MAX_SWEEP_FILE_BYTES)).toString('utf8');
  } catch (error) {
    const reason = error instanceof UnreadableFileError ? error.reason : (error as NodeJS.ErrnoException).code;
    throw new Error(`cannot read sweep file ${path}: ${reason ?? String(error)}`);
  }
  let data: unknown;
  try {
    data = parse(text);
  } catch (error) {
    throw new Error(`${path}: not valid YAML or JSON: ${(error as Error).message.split('\n')[0]}`);
  }
  return { text, spec: parseSweep(data, path) };
}
