/**
 * onnxruntime-web as the Trainer's injected runtime: the browser's /train page (and the Node test that
 * checks it against onnxruntime-node) pass in whichever onnxruntime-web entry point they imported.
 * No Node APIs here.
 */
import type {
  InferenceSession,
  OrtRuntime,
  Provider,
  SessionSettings,
  TensorConstructor,
} from '../../core/ort-runtime.ts';

/** The part of an onnxruntime-web module this needs (`onnxruntime-web`, `onnxruntime-web/webgpu`, …). */
export interface OrtWebModule {
  Tensor: TensorConstructor;
  InferenceSession: {
    create(model: Uint8Array, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
}

/**
 * Sessions on wasm, or on WebGPU when `device` is 'webgpu'. Threads are onnxruntime-web's global
 * `env.wasm.numThreads`, set once before the first session, so `threads` is not read here.
 */
export function webRuntime(ort: OrtWebModule): OrtRuntime {
  return {
    Tensor: ort.Tensor,
    async createSession(model: Uint8Array, settings: SessionSettings) {
      const provider: Provider = settings.device === 'webgpu' ? 'webgpu' : 'wasm';
      const session = await ort.InferenceSession.create(model, {
        executionProviders: [provider],
        graphOptimizationLevel: 'all',
        // The step's outputs are fed straight back as inputs; keep them where the JS side can read them.
        ...(provider === 'webgpu' ? { preferredOutputLocation: 'cpu' as const } : {}),
      });
      return { session, provider };
    },
  };
}
