/** Module (nn.*) forms of the parameter-free ops, for models that list them as layers. */
import * as F from './functional.ts';
import type { Module } from './module.ts';

export const reluLayer = (): Module => ({ type: 'ReLU', forward: (ctx, x) => F.relu(ctx, x) });

export const flattenLayer = (): Module => ({ type: 'Flatten', forward: (ctx, x) => F.flatten(ctx, x) });

export const scaleLayer = (factor: number): Module => ({ type: 'Scale', forward: (ctx, x) => F.scale(ctx, x, factor) });

export const maxPool2dLayer = (kernel: number, options?: F.PoolOptions): Module => ({
  type: 'MaxPool2d',
  forward: (ctx, x) => F.maxPool2d(ctx, x, kernel, options),
});

export const avgPool2dLayer = (kernel: number, options?: F.AvgPoolOptions): Module => ({
  type: 'AvgPool2d',
  forward: (ctx, x) => F.avgPool2d(ctx, x, kernel, options),
});

/** nn.Sequential: children run in order, named '0', '1', … or by the keys given. */
export function sequential(children: Module[] | Record<string, Module>): Module {
  const entries = Array.isArray(children) ? children.map((m, i) => [String(i), m] as const) : Object.entries(children);
  return {
    type: 'Sequential',
    forward(ctx, x) {
      return entries.reduce((value, [name, child]) => ctx.call(name, child, value), x);
    },
  };
}
