/**
 * nn.Dropout. Inference form: the identity (no node at all). Training form: x · mask, where the mask
 * (0 or 1/(1 − p) per element, as PyTorch scales) is a graph input the trainer draws from its seeded
 * RNG each step — so a resumed run draws the same masks, and the gradient is just Mul's.
 */
import type { Module } from './module.ts';

export interface DropoutModule extends Module {
  readonly p: number;
}

export function dropout(p = 0.5): DropoutModule {
  if (!(p >= 0 && p < 1)) throw new Error(`dropout probability must be in [0, 1), got ${p}`);
  return {
    type: 'Dropout',
    p,
    forward(ctx, x) {
      if (!ctx.training || p === 0) return x;
      const mask = ctx.randomInput('dropout_mask', x.shape, p);
      return ctx.value(ctx.graph.op('Mul', [x.name, mask]), x.shape);
    },
  };
}
