/** A training run's configuration: the CLI flags, validated, with the tutorial's recipe as defaults. */
import type { NodeDevice as Device } from '../../core/ort-runtime.ts';
import type { ModelName } from '../model/zoo/index.ts';
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
  labelSmoothing: number;
  seed: number;
  threads: number;
  device: Device;
  /** Train on the first N training images only (all 60,000 when absent). */
  limit?: number;
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
