/** What WebGPU this browser offers: the one adapter check the draw page and the /train worker share. */

type GpuAdapter = { info?: { isFallbackAdapter?: boolean }; isFallbackAdapter?: boolean };
type Gpu = { requestAdapter(): Promise<GpuAdapter | null> };

/**
 * 'absent': no navigator.gpu; 'failed': requestAdapter threw; 'no-adapter': it found none;
 * 'software': only a fallback adapter (~100× slower than wasm here); 'hardware': a real one.
 */
export type WebGpuSupport = 'absent' | 'failed' | 'no-adapter' | 'software' | 'hardware';

export async function probeWebGpu(): Promise<WebGpuSupport> {
  const gpu = (navigator as unknown as { gpu?: Gpu }).gpu;
  if (!gpu) return 'absent';
  let adapter: GpuAdapter | null;
  try {
    adapter = await gpu.requestAdapter();
  } catch {
    return 'failed';
  }
  if (!adapter) return 'no-adapter';
  return (adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter) ? 'software' : 'hardware';
}
