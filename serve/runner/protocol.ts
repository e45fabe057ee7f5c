/**
 * Messages between the server and a model's runner process (serve/runner/process.ts). One runner holds
 * one model version's ORT session; the server sends one request at a time and waits for its reply.
 */

import type { NodeDevice as Device, NodeProvider as Provider } from '../../core/ort-runtime.ts';
import type { ModelDescription } from '../../onnx/describe.ts';

export interface LoadRequest {
  type: 'load';
  /** The model file; the runner reads it itself and checks it hashes to `sha256` (the bytes the server holds). */
  path: string;
  sha256: string;
  /** Read only a regular file of at most this many bytes (the file may have been swapped since). */
  maxBytes: number;
  device: Device;
  threads: number;
}

export interface RunRequest {
  type: 'run';
  id: number;
  input: string;
  data: Float32Array;
  dims: number[];
  outputs: string[];
}

export type ToRunner = LoadRequest | RunRequest;

export type FromRunner =
  | { type: 'loaded'; info: ModelDescription; provider: Provider }
  | { type: 'result'; id: number; outputs: Record<string, Float32Array> }
  | { type: 'error'; id?: number; message: string };
