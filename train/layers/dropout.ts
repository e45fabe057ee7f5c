/** nn.Dropout. Inference form: the identity (ONNX Dropout with training_mode false is a no-op, so we emit none). */
import type { Module } from './module.ts';

export interface DropoutModule extends Module {
  readonly p: number;
}

export function dropout(p = 0.5): DropoutModule {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  return { type: 'Dropout', p, forward: (_ctx, x) => x };
}
