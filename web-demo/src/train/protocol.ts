/** Messages between the /train page and its training worker. */
import type { ModelName } from '../../../core/model/zoo/index.ts';

export type BrowserRecipe = 'tutorial' | 'adamw-onecycle';

export interface TrainRequest {
  model: ModelName;
  recipe: BrowserRecipe;
  epochs: number;
  /** Training images: the first N of MNIST's 60,000. */
  trainCount: number;
  /** Held-out images: the first N of MNIST's 10,000 test images. */
  testCount: number;
  batchSize: number;
  lr: number;
  seed: number;
  /** 'auto': WebGPU when a real (non-fallback) adapter exists, else wasm. */
  backend: 'auto' | 'wasm' | 'webgpu';
  /** wasm threads (0: all cores when the page is cross-origin isolated). */
  threads: number;
}

export type ToWorker =
  | { type: 'train'; request: TrainRequest }
  | { type: 'stop' }
  | { type: 'predict'; pixels: Float32Array };

export interface BatchReport {
  epoch: number;
  batch: number;
  batches: number;
  /** This batch's loss and accuracy (%). */
  loss: number;
  accuracy: number;
  imagesPerSecond: number;
}

export interface EpochReport {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  testLoss: number;
  testAccuracy: number;
  seconds: number;
  imagesPerSecond: number;
}

export interface DoneReport {
  /** The deployable model (folded normalization, logits + probabilities, metadata), serialized. */
  model: Uint8Array;
  /** Accuracy (%) of the deployable model on the held-out images. */
  testAccuracy: number;
  testCount: number;
  /** Deployable vs training-side forward pass on the same images: largest |Δlogit|, differing answers. */
  maxLogitDifference: number;
  disagreements: number;
  stopped: boolean;
  steps: number;
  imagesPerSecond: number;
}

export type FromWorker =
  | { type: 'backend'; backend: 'wasm' | 'webgpu'; threads: number; note: string }
  | { type: 'status'; text: string }
  | ({ type: 'batch' } & BatchReport)
  | ({ type: 'epoch' } & EpochReport)
  | ({ type: 'done' } & DoneReport)
  | { type: 'prediction'; probabilities: number[] }
  | { type: 'error'; message: string };
