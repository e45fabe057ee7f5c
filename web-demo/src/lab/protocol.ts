/** Messages between the failure lab (panel.ts) and its worker (worker.ts). */

export interface EvaluateRequest {
  type: 'evaluate';
  /** Echoed back, so a reply to an earlier model is recognised and dropped. */
  id: number;
  /** The model.onnx to test (a copy; transferred). */
  bytes: Uint8Array;
  /** How many of MNIST's 10,000 test images (the first N). */
  count: number;
}

/** One test image the model read wrong. */
export interface Misread {
  /** Its index in MNIST's test set. */
  index: number;
  label: number;
  predicted: number;
  probabilities: number[];
  /** 28×28 uint8, white ink on black, as MNIST stores it. */
  pixels: Uint8Array;
}

export interface Evaluation {
  /** The model's answer for every test image, in order. */
  predictions: Uint8Array;
  labels: Uint8Array;
  misread: Misread[];
  seconds: number;
}

export type FromLab =
  | { type: 'progress'; id: number; done: number; total: number }
  | ({ type: 'result'; id: number } & Evaluation)
  | { type: 'error'; id: number; message: string };
