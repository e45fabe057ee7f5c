/**
 * The Trainer on onnxruntime-node: train/trainer-core.ts with Node's runtime as the default, so CLI,
 * tests and benchmarks keep writing `Trainer.create(module, { optimizer })`. The browser imports
 * trainer-core.ts directly with onnxruntime-web's runtime.
 */
import { nodeRuntime } from '../runtime/execution.ts';
import type { OrtRuntime } from '../runtime/ort-runtime.ts';
import type { Module } from './layers/index.ts';
import { Trainer as PortableTrainer, type TrainerOptions as PortableTrainerOptions } from './trainer-core.ts';

export type { EvaluationResult, StepResult, TrainerState } from './trainer-core.ts';

export interface TrainerOptions extends Omit<PortableTrainerOptions, 'runtime'> {
  /** onnxruntime-node's unless given. */
  runtime?: OrtRuntime;
}

export class Trainer extends PortableTrainer {
  static override create(module: Module, options: TrainerOptions): Promise<Trainer> {
    return PortableTrainer.create(module, { ...options, runtime: options.runtime ?? nodeRuntime });
  }
}
