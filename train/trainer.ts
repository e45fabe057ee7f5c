/**
 * core's Trainer on onnxruntime-node: `createNodeTrainer(module, { optimizer })` is `Trainer.create` with
 * Node's runtime as the default, for the CLI, tests and benchmarks. The browser calls
 * `Trainer.create` with onnxruntime-web's runtime.
 */

import type { Module } from '../core/model/layers/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import { Trainer, type TrainerOptions } from '../core/training/trainer-core.ts';
import { nodeRuntime } from '../node/execution.ts';

export type { EvaluationResult, StepResult, Trainer, TrainerState } from '../core/training/trainer-core.ts';

export interface NodeTrainerOptions extends Omit<TrainerOptions, 'runtime'> {
  /** onnxruntime-node's unless given. */
  runtime?: OrtRuntime;
}

export function createNodeTrainer(module: Module, options: NodeTrainerOptions): Promise<Trainer> {
  return Trainer.create(module, { ...options, runtime: options.runtime ?? nodeRuntime });
}
