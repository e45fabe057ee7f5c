/**
 * The train flags a sweep may set (named as on the command line, without `--`), what values each takes,
 * and how a trial's values become `npm run train` arguments. Values are checked by train's own config
 * schema, so a bad value is refused when the sweep file is read, not trials later.
 */
import { z } from 'zod';
import { RECIPE_NAMES, RECIPES, type RecipeName } from '../core/training/recipes.ts';
import { trainConfigSchema } from '../core/training/run-config-schema.ts';

/** Train's own schema for config.json and flags: a sweep's values meet the same bounds (batch ≤ 4096, …). */
const config = trainConfigSchema.shape;

export const FLAG_VALUES = {
  recipe: z.enum(RECIPE_NAMES),
  model: config.model,
  epochs: config.epochs,
  'batch-size': config.batchSize,
  lr: config.lr,
  momentum: config.momentum,
  optimizer: config.optimizer,
  'weight-decay': config.weightDecay,
  schedule: config.schedule,
  augment: config.augment,
  elastic: config.elastic.unwrap(),
  erase: config.erase.unwrap(),
  dropout: config.dropout.unwrap(),
  'plain-epochs': config.plainEpochs.unwrap(),
  'label-smoothing': config.labelSmoothing,
  seed: config.seed,
  threads: config.threads,
  device: config.device,
  limit: config.limit.unwrap(),
  validation: config.validation.unwrap(),
  ema: config.ema.unwrap(),
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
export const INTEGER_FLAGS = new Set<Flag>([
  'epochs',
  'batch-size',
  'seed',
  'threads',
  'limit',
  'validation',
  'plain-epochs',
]);

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
