/**
 * An optimizer is a graph fragment: for each parameter it emits the update from (param, grad, state)
 * to (param', state'). The learning rate and the step count are graph inputs, so a schedule needs no
 * new graph; every other hyperparameter is a constant baked into the graph.
 */
import type { GraphBuilder } from '../../../onnx/builder.ts';

export interface UpdateInputs {
  param: string;
  grad: string;
  /** Current state value per slot name. */
  state: Record<string, string>;
}

export interface UpdateOutputs {
  param: string;
  state: Record<string, string>;
}

/**
 * The update's hyperparameters, for a fused kernel that does what `emit`'s graph does, operation by
 * operation (native/optimizer_update.h): the data-parallel trainer updates its shards in place with it.
 */
export type NativeUpdate =
  | { kind: 'sgd'; momentum: number; weightDecay: number; nesterov: boolean }
  | { kind: 'adam'; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean };

export interface Optimizer {
  readonly name: string;
  /** Per-parameter state slots, each shaped like the parameter and starting at zero (e.g. momentum_buffer). */
  readonly slots: readonly string[];
  /** Whether the update reads the step count t (Adam's bias corrections): the graph then has a `step` input. */
  readonly usesStep: boolean;
  /** The same update for the native kernel. */
  readonly native: NativeUpdate;
  /**
   * Emit shared values once (bias corrections…), then return the per-parameter update emitter.
   * `step` is the step-count input's name, or '' when `usesStep` is false.
   */
  emit(g: GraphBuilder, lr: string, step: string): (inputs: UpdateInputs) => UpdateOutputs;
}

/** A scalar float constant. */
export function scalar(g: GraphBuilder, value: number, hint: string): string {
  return g.constant({ dataType: 'FLOAT', dims: [], data: Float32Array.of(value) }, hint);
}
