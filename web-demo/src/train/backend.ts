/** Which onnxruntime-web backend to train on, and why: WebGPU only on a real adapter, else wasm. */

import { probeWebGpu } from '../webgpu.ts';

export interface BackendChoice {
  backend: 'wasm' | 'webgpu';
  /** Why this backend (shown on the page). */
  reason: string;
}

export async function chooseTrainingBackend(wanted: 'auto' | 'wasm' | 'webgpu'): Promise<BackendChoice> {
  if (wanted === 'wasm') return { backend: 'wasm', reason: 'wasm requested' };
  const support = await probeWebGpu();
  if (support === 'absent') return { backend: 'wasm', reason: 'this browser has no WebGPU (navigator.gpu)' };
  if (support === 'failed' || support === 'no-adapter') return { backend: 'wasm', reason: 'WebGPU found no adapter' };
  const fallback = support === 'software';
  if (fallback && wanted === 'auto')
    return { backend: 'wasm', reason: 'the only WebGPU adapter is a software fallback (~100× slower than wasm)' };
  return { backend: 'webgpu', reason: fallback ? 'WebGPU requested (software adapter)' : 'a WebGPU adapter' };
}

/** wasm threads: all cores when cross-origin isolated (SharedArrayBuffer), else one, with the reason. */
export function chooseThreads(wanted: number): { threads: number; reason: string } {
  if (!self.crossOriginIsolated) return { threads: 1, reason: '1 thread (the page is not cross-origin isolated)' };
  if (wanted > 0) return { threads: wanted, reason: `${wanted} thread${wanted === 1 ? '' : 's'} (requested)` };
  const cores = navigator.hardwareConcurrency || 1;
  return { threads: cores, reason: `${cores} thread${cores === 1 ? '' : 's'} (all cores)` };
}
