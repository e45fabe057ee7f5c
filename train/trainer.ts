/**
 * The Trainer on onnxruntime-node: core/training/trainer-core.ts with Node's runtime as the default, so CLI,
 * tests and benchmarks keep writing `Trainer.create(module, { optimizer })`. The browser imports
 * trainer-core.ts directly with onnxruntime-web's runtime.
 */

import type { Module } from '../core/model/layers/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import {
  Trainer as PortableTrainer,
  type TrainerOptions as PortableTrainerOptions,
} from '../core/training/trainer-core.ts';
import { nodeRuntime } from '../node/execution.ts';

export type { EvaluationResult, StepResult, TrainerState } from '../core/training/trainer-core.ts';

export interface TrainerOptions extends Omit<PortableTrainerOptions, 'runtime'> {
  /** onnxruntime-node's unless given. */
  runtime?: OrtRuntime;
}

export class Trainer extends PortableTrainer {
  static override create(module: Module, options: TrainerOptions): Promise<Trainer> {
    return PortableTrainer.create(module, { ...options, runtime: options.runtime ?? nodeRuntime });
  }
}
