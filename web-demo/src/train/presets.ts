/**
 * The page's one-click settings. `quick` is the default, chosen by measurement (see docs/browser.md): the CLI's
 * Trainer with these settings and seed 0 reaches 98.67% on all 10,000 test images (cnn stays near 97.2%
 * on the same budget), and the page trains it in well under a minute of wasm in Chromium on a 2-core
 * machine, leaving room for slower ones. `tutorial` is the PyTorch tutorial's recipe, one of its ten epochs.
 */
import type { ModelName } from '../../../core/model/zoo/index.ts';
import type { BrowserRecipe } from './protocol.ts';

export interface PageSettings {
  model: ModelName;
  recipe: BrowserRecipe;
  epochs: number;
  trainCount: number;
  batchSize: number;
  lr: number;
  testCount: number;
}

export type PresetName = 'quick' | 'tutorial';

export const PRESETS: Record<PresetName, { label: string; note: string; settings: PageSettings }> = {
  quick: {
    label: 'Quick: ≥ 97% in about a minute',
    note: 'fast-cnn, AdamW one-cycle, batch 64, peak lr 0.01, one pass over 30,000 images.',
    settings: {
      model: 'fast-cnn',
      recipe: 'adamw-onecycle',
      epochs: 1,
      trainCount: 30_000,
      batchSize: 64,
      lr: 0.01,
      testCount: 10_000,
    },
  },
  tutorial: {
    label: 'The tutorial’s recipe',
    note: 'The PyTorch tutorial: cnn, SGD lr 0.01 (momentum 0.5), batch 64; one of its 10 epochs over all 60,000 images (several minutes here).',
    settings: {
      model: 'cnn',
      recipe: 'tutorial',
      epochs: 1,
      trainCount: 60_000,
      batchSize: 64,
      lr: 0.01,
      testCount: 10_000,
    },
  },
};
