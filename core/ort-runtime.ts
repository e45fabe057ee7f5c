/**
 * The slice of ONNX Runtime that training needs, injected so the same Trainer runs on onnxruntime-node
 * (the CLI: `nodeRuntime` in node/execution.ts) and on onnxruntime-web (the browser's /train page,
 * `webRuntime` in web-demo/src/web-runtime.ts). Nothing here imports a runtime or a Node API.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';

export type { InferenceSession, Tensor };

export type Device = 'auto' | 'cpu' | 'cuda' | 'webgpu' | 'wasm';
/** Where a session actually runs. */
export type Provider = Exclude<Device, 'auto'>;
/** The devices onnxruntime-node offers ('wasm' is onnxruntime-web's). */
export type NodeDevice = Exclude<Device, 'wasm'>;
export const NODE_DEVICES: readonly NodeDevice[] = ['auto', 'cpu', 'cuda', 'webgpu'];
export type NodeProvider = Exclude<NodeDevice, 'auto'>;

export interface SessionSettings {
  device?: Device;
  /** Intra-op threads (default 1: on shared 2-core machines 1 thread, or 2 without spinning, beat ORT's default). */
  threads?: number;
  /** Called with a one-line message when 'auto' falls back. */
  onNotice?: (message: string) => void;
  /** Node names to keep on the CPU when a GPU provider runs the rest (ops it lacks). */
  forceCpuNodeNames?: string[];
}

/** The Tensor constructor of one ORT package (node and web share onnxruntime-common's Tensor type). */
export type TensorConstructor = typeof Tensor;

export interface OrtRuntime {
  Tensor: TensorConstructor;
  /** Create a session for a serialized model; returns the provider it got. */
  createSession(
    model: Uint8Array,
    settings: SessionSettings,
  ): Promise<{ session: InferenceSession; provider: Provider }>;
}
