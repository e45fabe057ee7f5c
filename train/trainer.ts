/**
 * core's Trainer on onnxruntime-node: `createNodeTrainer(module, { optimizer })` is `Trainer.create` with
 * Node's runtime as the default, for the CLI, tests and benchmarks. The browser calls
 * `Trainer.create` with onnxruntime-web's runtime.
 */

import type { Module } from '../core/model/layers/index.ts';
import type { OrtRuntime } from '../core/ort-runtime.ts';
import { Trainer, type TrainerOptions } from '../core/training/trainer-core.ts';
import { probeDevice } from '../node/device-probe.ts';
import { nodeRuntime } from '../node/execution.ts';
import { nchwcBlockSize } from '../node/nchwc.ts';

export type { EvaluationResult, StepResult, Trainer, TrainerState } from '../core/training/trainer-core.ts';

export interface NodeTrainerOptions extends Omit<TrainerOptions, 'runtime' | 'nchwcBlock'> {
  /** onnxruntime-node's unless given. */
  runtime?: OrtRuntime;
  /** On the CPU, run the forward Convs as ORT's NCHWc convolutions where this CPU has them (default true). */
  nchwc?: boolean;
}

export async function createNodeTrainer(module: Module, options: NodeTrainerOptions): Promise<Trainer> {
  const { nchwc, ...rest } = options;
  const runtime = options.runtime ?? nodeRuntime;
  const device = runtime === nodeRuntime ? await resolveNodeDevice(options) : options.device;
  const cpu = (device ?? 'cpu') === 'cpu' && runtime === nodeRuntime;
  const nchwcBlock = cpu && nchwc !== false ? await nchwcBlockSize() : undefined;
  return Trainer.create(module, { ...rest, device, runtime, nchwcBlock });
}

/**
 * The provider `options.device` means here: 'auto' becomes what the probe finds (CUDA, else the CPU), so
 * the step is built for the device it runs on — the GPU's graph on CUDA, the CPU's NCHWc convolutions,
 * native kernels and workers on the CPU — not a graph for neither.
 */
export async function resolveNodeDevice(options: Pick<NodeTrainerOptions, 'device' | 'onNotice'>) {
  return options.device === 'auto' ? probeDevice('auto', options.onNotice) : options.device;
}
