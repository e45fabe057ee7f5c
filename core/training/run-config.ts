/** A training run's configuration: the CLI flags, validated, with the tutorial's recipe as defaults. */

import type { ModelName } from '../model/zoo/index.ts';
import type { NodeDevice as Device } from '../ort-runtime.ts';
import type { ScheduleName } from './schedule.ts';

export type OptimizerName = 'sgd' | 'adam' | 'adamw';
export const OPTIMIZERS: readonly OptimizerName[] = ['sgd', 'adam', 'adamw'];

export interface TrainConfig {
  model: ModelName;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  optimizer: OptimizerName;
  weightDecay: number;
  schedule: ScheduleName;
  augment: boolean;
  /**
   * Elastic distortion of the training images with this α in pixels (Simard et al. 2003: displacements
   * smoothed by a Gaussian of σ 4, scaled by α; 34 in the paper), after `augment`'s affine map if that is on.
   */
  elastic?: number;
  /**
   * Random erasing's probability per training image (Zhong et al. 2017: a rectangle of 2–40% of the image,
   * aspect 0.3–3.3, filled with random pixels), after `augment` and `elastic`.
   */
  erase?: number;
  /**
   * The last N epochs train on the images as they are, augmentation off (the run's test images are never
   * augmented; the averaged weights then settle on them). 0 or absent: every epoch augmented.
   */
  plainEpochs?: number;
  /** Every dropout layer's probability, for models that have them (cnn7's family: 0.4 when absent). */
  dropout?: number;
  labelSmoothing: number;
  seed: number;
  threads: number;
  device: Device;
  /** Train on the first N training images only (all of them when absent; with `validation`, of the rest). */
  limit?: number;
  /**
   * Hold out the last N of the 60,000 training images and evaluate on them after every epoch instead of the
   * test set, which is then never read: how recipes are chosen without looking at the test set.
   */
  validation?: number;
  /**
   * Keep an exponential moving average of the weights with this decay (e.g. 0.999) and make it the run's
   * model: what each epoch evaluates, the checkpoint keeps and export writes (core/training/weight-average.ts).
   */
  ema?: number;
  /**
   * How the CLI split each step ('workers' or one 'session'; the model's default when absent) and whether
   * it autotuned: recorded so that `--resume` continues the run the same way.
   */
  parallelism?: 'workers' | 'session';
  autotune?: boolean;
}

/** The tutorial's recipe: SGD(lr 0.01, momentum 0.5), batch 64, 10 epochs. */
export const TUTORIAL_RECIPE: Omit<TrainConfig, 'model'> = {
  epochs: 10,
  batchSize: 64,
  lr: 0.01,
  momentum: 0.5,
  optimizer: 'sgd',
  weightDecay: 0,
  schedule: 'none',
  augment: false,
  labelSmoothing: 0,
  seed: 0,
  threads: 1,
  device: 'cpu',
};

/** One line for a model's metadata: how it was trained. */
export function describeRecipe(
  config: Pick<
    TrainConfig,
    'optimizer' | 'lr' | 'momentum' | 'batchSize' | 'schedule' | 'augment' | 'weightDecay' | 'labelSmoothing' | 'seed'
  > &
    Partial<Pick<TrainConfig, 'limit' | 'validation' | 'ema' | 'elastic' | 'erase' | 'dropout' | 'plainEpochs'>>,
): string {
  const parts = [
    `${config.optimizer} lr ${config.lr}${config.optimizer === 'sgd' ? ` momentum ${config.momentum}` : ''}`,
    `batch ${config.batchSize}`,
    `schedule ${config.schedule}`,
  ];
  if (config.augment) parts.push('augmented');
  if (config.elastic) parts.push(`elastic distortion α ${config.elastic}`);
  if (config.erase) parts.push(`random erasing p ${config.erase}`);
  if (config.plainEpochs) parts.push(`last ${config.plainEpochs} epochs not augmented`);
  if (config.dropout !== undefined) parts.push(`dropout ${config.dropout}`);
  if (config.weightDecay) parts.push(`weight decay ${config.weightDecay}`);
  if (config.labelSmoothing) parts.push(`label smoothing ${config.labelSmoothing}`);
  if (config.ema) parts.push(`weights averaged (EMA decay ${config.ema})`);
  if (config.validation) parts.push(`last ${config.validation} training images held out`);
  if (config.limit) parts.push(`first ${config.limit} training images`);
  parts.push(`seed ${config.seed}`);
  return parts.join(', ');
}
