/** Messages between the embedding view (embedding-panel.ts) and its worker (embedding-worker.ts). */

export interface EmbedRequest {
  type: 'embed';
  id: number;
  /** The model.onnx (a copy; transferred). */
  bytes: Uint8Array;
  /** How many of MNIST's test images (the first N). */
  count: number;
}

/** Place the user's digit among the points of the last embedding (UMAP's transform). */
export interface PlaceRequest {
  type: 'place';
  id: number;
  /** 28×28 raw [0, 1]. */
  pixels: Float32Array;
}

export type ToEmbedding = EmbedRequest | PlaceRequest;

export interface Embedding {
  /** x, y per image, interleaved. */
  points: Float32Array;
  labels: Uint8Array;
  /** 28×28 uint8 per image (for hovering). */
  pixels: Uint8Array;
  /** The features' width (e.g. 320 for the cnn) and their layer. */
  dims: number;
  features: string;
  /** Seconds reading the features, and fitting UMAP. */
  featureSeconds: number;
  fitSeconds: number;
}

export type FromEmbedding =
  | { type: 'progress'; id: number; stage: 'features' | 'umap'; done: number; total: number }
  | ({ type: 'embedded'; id: number } & Embedding)
  | { type: 'placed'; id: number; point: [number, number]; prediction: number }
  | { type: 'error'; id: number; message: string };
