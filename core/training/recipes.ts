/**
 * Named training recipes, so the measured results can be rerun with one flag
 * (`npm run train -- --recipe fast`). Flags given on the command line override a recipe's values.
 */
import { type TrainConfig, TUTORIAL_RECIPE } from './run-config.ts';

export type RecipeName = 'tutorial' | 'fast' | 'best';

export interface Recipe {
  description: string;
  config: TrainConfig;
  /**
   * How `train` splits a step over `threads` when no --workers/--no-workers flag is given: 'workers'
   * (data-parallel, per-slice BatchNorm statistics) or one 'session'; the model's default when absent.
   */
  parallelism?: 'workers' | 'session';
}

/** What our two recipes share: AdamW (weight decay 5·10⁻⁴) with a one-cycle schedule, batch 128, 2 threads (fast overrides the batch). */
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
      'fastest to 99%: fast-cnn, AdamW one-cycle lr 0.02, batch 64, label smoothing 0.1, 1 pass over 60,000 images, 2 workers',
    // Two data-parallel workers, each computing its Conv weight gradients with the native kernel: a second
    // intra-op thread gained nothing for fast-cnn's small convolutions, two workers halve the step
    // (bench/results-fast-recipe.md). Without the native kernel a worker step is slower: see that file.
    config: {
      ...ADAMW_ONE_CYCLE,
      model: 'fast-cnn',
      epochs: 1,
      batchSize: 64,
      lr: 0.02,
      labelSmoothing: 0.1,
      threads: 2,
    },
    parallelism: 'workers',
  },
  best: {
    description:
      'best accuracy: cnn7-wider, AdamW one-cycle lr 0.003, augmentation, label smoothing 0.1, 16 epochs, weights averaged (EMA 0.999), 2 workers',
    // Chosen on 10,000 held-out training images, never the test set (sweeps/best-validation.yaml … -13.yaml):
    // label smoothing 0.1 over 0.05 and lr 0.006; 2 data-parallel workers (BatchNorm statistics per 64-image
    // slice, ~1.5× the images/s of one 2-thread session) as good as one session; the weights' moving
    // average, which at 16 epochs scored above both the 8-epoch average and the weights as trained; then
    // cnn7-wide (1.5× the channels) over cnn7, 99.70% against 99.61%; then cnn7-wider (2×) over cnn7-wide by its
    // stage's rule, 99.71% against 99.70% — one image, within noise. Stages 7–13 (24 epochs, weight decay 0.05
    // and 0.2, label smoothing 0.2, SGD, batch 64, a deeper net) did not beat it (bench/results-best-recipe.md).
    config: {
      ...ADAMW_ONE_CYCLE,
      model: 'cnn7-wider',
      epochs: 16,
      lr: 0.003,
      augment: true,
      labelSmoothing: 0.1,
      ema: 0.999,
    },
    parallelism: 'workers',
  },
};

export const RECIPE_NAMES = Object.keys(RECIPES) as RecipeName[];
