/**
 * Named training recipes, so the measured results can be rerun with one flag
 * (`npm run train -- --recipe fast`). Flags given on the command line override a recipe's values.
 */
import { type TrainConfig, TUTORIAL_RECIPE } from './run-config.ts';

export type RecipeName = 'tutorial' | 'fast' | 'best';

export interface Recipe {
  description: string;
  config: TrainConfig;
}

/** What our two recipes share: AdamW (weight decay 5·10⁻⁴) with a one-cycle schedule (fast overrides batch 128 and 2 threads). */
const ADAMW_ONE_CYCLE: Omit<TrainConfig, 'model'> = {
  ...TUTORIAL_RECIPE,
  batchSize: 128,
  optimizer: 'adamw',
  weightDecay: 5e-4,
  schedule: 'onecycle',
  threads: 2,
};

export const RECIPES: Record<RecipeName, Recipe> = {
  tutorial: {
    description: "the tutorial's: SGD lr 0.01, momentum 0.5, batch 64, 10 epochs",
    config: { ...TUTORIAL_RECIPE, model: 'cnn' },
  },
  fast: {
    description:
      'fastest to 99%: fast-cnn, AdamW one-cycle lr 0.02, batch 64, label smoothing 0.1, 1 pass over 50,000 images, 1 thread',
    // One ORT thread: fast-cnn's small convolutions gained nothing from a second intra-op thread here, and a
    // one-thread step keeps its speed when the other core is busy (bench/results-fast-recipe.md).
    config: {
      ...ADAMW_ONE_CYCLE,
      model: 'fast-cnn',
      epochs: 1,
      limit: 50_000,
      batchSize: 64,
      lr: 0.02,
      labelSmoothing: 0.1,
      threads: 1,
    },
  },
  best: {
    description: 'best accuracy: cnn7, AdamW one-cycle lr 0.003, augmentation, label smoothing 0.05, 16 epochs',
    config: { ...ADAMW_ONE_CYCLE, model: 'cnn7', epochs: 16, lr: 0.003, augment: true, labelSmoothing: 0.05 },
  },
};

export const RECIPE_NAMES = Object.keys(RECIPES) as RecipeName[];
