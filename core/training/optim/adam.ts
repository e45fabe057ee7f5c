/**
 * Adam and AdamW with PyTorch's semantics, step t ≥ 1 fed as an input:
 *   Adam:  g ← g + λ·p            AdamW: p ← p·(1 − lr·λ)
 *   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
 *   p ← p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
 */
import type { Optimizer } from './optimizer.ts';
import { scalar } from './optimizer.ts';

export interface AdamOptions {
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  /** Decoupled weight decay (AdamW). */
  decoupled?: boolean;
}

export function adam({
  betas = [0.9, 0.999],
  eps = 1e-8,
  weightDecay = 0,
  decoupled = false,
}: AdamOptions = {}): Optimizer {
  const [beta1, beta2] = betas;
  for (const b of betas) if (!(b >= 0 && b < 1)) throw new Error(`Adam betas must be in [0, 1), got ${b}`);
  if (weightDecay < 0) throw new Error(`weight decay must be ≥ 0, got ${weightDecay}`);
  return {
    name: decoupled ? 'adamw' : 'adam',
    slots: ['exp_avg', 'exp_avg_sq'],
    usesStep: true,
    native: { kind: 'adam', beta1, beta2, eps, weightDecay, decoupled },
    emit(g, lr, step) {
      const one = scalar(g, 1, 'one');
      const b1 = scalar(g, beta1, 'beta1');
      const b2 = scalar(g, beta2, 'beta2');
      const oneMinusB1 = scalar(g, 1 - beta1, 'one_minus_beta1');
      const oneMinusB2 = scalar(g, 1 - beta2, 'one_minus_beta2');
      const epsilon = scalar(g, eps, 'eps');
      const decay = scalar(g, weightDecay, 'weight_decay');
      const correction1 = g.op('Sub', [one, g.op('Pow', [b1, step])]);
      const sqrtCorrection2 = g.op('Sqrt', [g.op('Sub', [one, g.op('Pow', [b2, step])])]);
      const stepSize = g.op('Div', [lr, correction1]);
      const shrink = decoupled && weightDecay > 0 ? g.op('Sub', [one, g.op('Mul', [lr, decay])]) : '';

      return ({ param, grad, state }) => {
        let p = param;
        let d = grad;
        if (weightDecay > 0) {
          if (decoupled) p = g.op('Mul', [param, shrink]);
          else d = g.op('Add', [grad, g.op('Mul', [param, decay])]);
        }
        const m = g.op('Add', [g.op('Mul', [state.exp_avg as string, b1]), g.op('Mul', [d, oneMinusB1])]);
        const v = g.op('Add', [
          g.op('Mul', [state.exp_avg_sq as string, b2]),
          g.op('Mul', [g.op('Mul', [d, d]), oneMinusB2]),
        ]);
        const denom = g.op('Add', [g.op('Div', [g.op('Sqrt', [v]), sqrtCorrection2]), epsilon]);
        const next = g.op('Sub', [p, g.op('Mul', [stepSize, g.op('Div', [m, denom])])]);
        return { param: next, state: { exp_avg: m, exp_avg_sq: v } };
      };
    },
  };
}

export const adamw = (options: Omit<AdamOptions, 'decoupled'> = {}) =>
  adam({ weightDecay: 0.01, ...options, decoupled: true });
