/**
 * The train flags a sweep may set (named as on the command line, without `--`), what values each takes,
 * and how a trial's values become `npm run train` arguments. The schemas mirror train/cli/train.ts's
 * parsers, so a bad value is refused when the sweep file is read, not trials later.
 */
import { z } from 'zod';
import { DEVICES } from '../runtime/execution.ts';
import { RECIPE_NAMES, RECIPES, type RecipeName } from '../train/recipes.ts';
import { OPTIMIZERS } from '../train/run-config.ts';
import { SCHEDULES } from '../train/schedule.ts';
import { MODEL_NAMES } from '../train/zoo/index.ts';

const positiveInt = z.number().int().positive();
const nonNegativeInt = z.number().int().nonnegative();
const positive = z.number().positive();
const nonNegative = z.number().nonnegative();
const fraction = z.number().nonnegative().lt(1);

export const FLAG_VALUES = {
  recipe: z.enum(RECIPE_NAMES),
  model: z.enum(MODEL_NAMES),
  epochs: positiveInt,
  'batch-size': positiveInt,
  lr: positive,
  momentum: fraction,
  optimizer: z.enum(OPTIMIZERS),
  'weight-decay': nonNegative,
  schedule: z.enum(SCHEDULES),
  augment: z.boolean(),
  'label-smoothing': fraction,
  seed: nonNegativeInt,
  threads: positiveInt,
  device: z.enum(DEVICES),
  limit: positiveInt,
  autotune: z.boolean(),
  workers: z.boolean(),
} as const;

export type Flag = keyof typeof FLAG_VALUES;
export const FLAGS = Object.keys(FLAG_VALUES) as Flag[];
export type FlagValue = string | number | boolean;
/** One trial's train flags: the sweep's base with a grid point and random draws over it. */
export type TrialFlags = Partial<Record<Flag, FlagValue>>;

/** Flags whose values are numbers (random ranges are allowed over these only). */
export const NUMERIC_FLAGS = FLAGS.filter((f) => FLAG_VALUES[f] instanceof z.ZodNumber);
/** Flags with integer values: random draws over them are rounded. */
export const INTEGER_FLAGS = new Set<Flag>(['epochs', 'batch-size', 'seed', 'threads', 'limit']);

/**
 * `npm run train` arguments for `flags`, in FLAGS order (so a trial's command reads the same every time).
 * Switches have no `--no-` form in train for `augment`: a recipe that augments cannot be told not to.
 */
export function trainArgs(flags: TrialFlags): string[] {
  const recipe = RECIPES[(flags.recipe ?? 'tutorial') as RecipeName].config;
  const args: string[] = [];
  for (const flag of FLAGS) {
    const value = flags[flag];
    if (value === undefined) continue;
    if (flag === 'augment') {
      if (value === false && recipe.augment)
        throw new Error(
          `augment: false cannot undo --recipe ${flags.recipe}'s augmentation (train has no --no-augment)`,
        );
      if (value === true) args.push('--augment');
    } else if (flag === 'autotune') {
      if (value === false) args.push('--no-autotune');
    } else if (flag === 'workers') {
      args.push(value ? '--workers' : '--no-workers');
    } else {
      args.push(`--${flag}`, String(value));
    }
  }
  return args;
}

/** A shell-ready command line (arguments here never need quoting: flag values are names and numbers). */
export const commandLine = (words: string[]) => words.join(' ');
