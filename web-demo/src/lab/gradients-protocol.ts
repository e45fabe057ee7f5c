/** Messages between the page's gradient views (why-panel.ts, attack-panel.ts) and gradients-worker.ts. */
import type { AttackMethod } from '../../../core/explain-gradients/adversarial.ts';

/** Which model a request is for: `name/version`, with its model.onnx the first time the worker sees it. */
export interface ModelRef {
  key: string;
  /** Sent until the worker has said it holds the key (a copy; transferred). */
  bytes?: Uint8Array;
}

export interface ExplainRequest {
  type: 'explain';
  id: number;
  model: ModelRef;
  /** 28×28 raw [0, 1]. */
  pixels: Float32Array;
  /** Classes to explain: the predicted one first, then any the user picked. */
  classes: number[];
}

export interface AttackRequest {
  type: 'attack';
  id: number;
  model: ModelRef;
  pixels: Float32Array;
  method: AttackMethod;
  /** The digit the model reads now. */
  label: number;
  /** Toward this digit; absent: any other. */
  target?: number;
  /** 'at': attack with exactly `epsilon`; 'smallest': search ε ≤ `epsilon`. */
  mode: 'at' | 'smallest';
  epsilon: number;
}

export type ToGradients = ExplainRequest | AttackRequest;

export interface ExplainedClass {
  class: number;
  saliency: Float32Array;
  /** Grad-CAM at 28×28; absent for a model without Conv. */
  cam?: Float32Array;
}

export interface AttackOutcome {
  method: AttackMethod;
  epsilon: number;
  /** For a search: the largest ε tried that failed. */
  failedAt?: number;
  image: Float32Array;
  prediction: number;
  probabilities: number[];
  flipped: boolean;
  gradientRuns: number;
}

export type FromGradients =
  | { type: 'explained'; id: number; key: string; logits: number[]; classes: ExplainedClass[]; ms: number }
  | { type: 'attacked'; id: number; key: string; outcome?: AttackOutcome; ms: number }
  | { type: 'error'; id: number; key: string; message: string };
