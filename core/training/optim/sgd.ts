/**
 * SGD with PyTorch's semantics (dampening 0):
 *   g ← g + λ·p;  b ← μ·b + g (b starts at 0, so the first step gives b = g);
 *   g ← nesterov ? g + μ·b : b;  p ← p − lr·g
 */
import type { Optimizer } from './optimizer.ts';
import { scalar } from './optimizer.ts';

export interface SgdOptions {
  momentum?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export function sgd({ momentum = 0, weightDecay = 0, nesterov = false }: SgdOptions = {}): Optimizer {
  if (momentum < 0) throw new Error(`momentum must be ≥ 0, got ${momentum}`);
  if (weightDecay < 0) throw new Error(`weight decay must be ≥ 0, got ${weightDecay}`);
  if (nesterov && momentum === 0) throw new Error('Nesterov momentum needs momentum > 0');
  return {
    name: 'sgd',
    slots: momentum > 0 ? ['momentum_buffer'] : [],
    usesStep: false,
    native: { kind: 'sgd', momentum, weightDecay, nesterov },
    emit(g, lr) {
      const mu = momentum > 0 ? scalar(g, momentum, 'momentum') : '';
      const decay = weightDecay > 0 ? scalar(g, weightDecay, 'weight_decay') : '';
      return ({ param, grad, state }) => {
        let d = weightDecay > 0 ? g.op('Add', [grad, g.op('Mul', [param, decay])]) : grad;
        const next: Record<string, string> = {};
        if (momentum > 0) {
          const buffer = g.op('Add', [g.op('Mul', [state.momentum_buffer as string, mu]), d]);
          next.momentum_buffer = buffer;
          d = nesterov ? g.op('Add', [d, g.op('Mul', [buffer, mu])]) : buffer;
        }
        return { param: g.op('Sub', [param, g.op('Mul', [d, lr])]), state: next };
      };
    },
  };
}
