/** The page's two recipes, taken from core/training/recipes.ts (the CLI's tutorial and AdamW one-cycle settings). */
import { RECIPES } from '../../../core/training/recipes.ts';
import type { TrainConfig } from '../../../core/training/run-config.ts';
import type { BrowserRecipe, TrainRequest } from './protocol.ts';

export const BROWSER_RECIPES: Record<BrowserRecipe, { label: string; config: Omit<TrainConfig, 'model'> }> = {
  tutorial: { label: 'Tutorial SGD', config: RECIPES.tutorial.config },
  // The CLI's fast recipe at the page's batch size (presets.ts), without its label smoothing: the page's
  // defaults were measured without it (bench/results-train-page.md).
  'adamw-onecycle': {
    label: 'AdamW one-cycle',
    config: { ...RECIPES.fast.config, augment: false, batchSize: 64, labelSmoothing: 0 },
  },
};

/** The recipe's settings with the page's batch size and peak learning rate. */
export function recipeConfig(request: TrainRequest): TrainConfig {
  return {
    ...BROWSER_RECIPES[request.recipe].config,
    model: request.model,
    epochs: request.epochs,
    batchSize: request.batchSize,
    lr: request.lr,
    seed: request.seed,
  };
}
