/** The server's model list, and in-browser sessions on WebGPU or wasm (onnxruntime-web). */
import * as ort from 'onnxruntime-web/webgpu';
import { softmax } from '../../serve/preprocess/softmax.ts';

export interface ModelEntry {
  name: string;
  version: number;
  accuracy?: string;
  label: string;
}

interface ApiModel {
  name: string;
  versions: { version: number; ready: boolean; metadata?: Record<string, string> }[];
}

export async function fetchModels(): Promise<ModelEntry[]> {
  const response = await fetch('/api/models');
  if (!response.ok) throw new Error(`model list: HTTP ${response.status}`);
  const list = (await response.json()) as ApiModel[];
  return list.flatMap((m) => {
    const ready = m.versions.filter((v) => v.ready);
    const newest = ready.at(-1);
    if (!newest) return [];
    const accuracy = newest.metadata?.test_accuracy;
    return [
      {
        name: m.name,
        version: newest.version,
        accuracy,
        label: `${m.name} v${newest.version}${accuracy ? ` — ${accuracy}%` : ''}`,
      },
    ];
  });
}

export type Backend = 'webgpu' | 'wasm';

/** WebGPU when a real (non-fallback) adapter exists, else wasm; `?ep=wasm|webgpu` forces one. */
export async function chooseBackend(): Promise<Backend> {
  const forced = new URLSearchParams(location.search).get('ep');
  if (forced === 'wasm' || forced === 'webgpu') return forced;
  const gpu = (
    navigator as Navigator & {
      gpu?: {
        requestAdapter(): Promise<{ info?: { isFallbackAdapter?: boolean }; isFallbackAdapter?: boolean } | null>;
      };
    }
  ).gpu;
  if (!gpu) return 'wasm';
  try {
    const adapter = await gpu.requestAdapter();
    // A software (fallback) adapter is ~100× slower than wasm here.
    return adapter && !(adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter) ? 'webgpu' : 'wasm';
  } catch {
    return 'wasm';
  }
}

// wasm threads need cross-origin isolation; at batch 1 one thread is as fast anyway.
ort.env.wasm.numThreads = 1;

const sessions = new Map<string, Promise<ort.InferenceSession>>();

export function session(model: ModelEntry, backend: Backend): Promise<ort.InferenceSession> {
  const key = `${model.name}/${model.version}/${backend}`;
  let s = sessions.get(key);
  if (!s) {
    s = (async () => {
      const response = await fetch(`/models/${model.name}/${model.version}/model.onnx`);
      if (!response.ok) throw new Error(`model file: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return ort.InferenceSession.create(bytes, { executionProviders: [backend] });
    })();
    sessions.set(key, s);
    s.catch(() => sessions.delete(key));
  }
  return s;
}

export async function runInBrowser(model: ModelEntry, backend: Backend, input: Float32Array): Promise<number[]> {
  const s = await session(model, backend);
  // A fresh tensor per run (a reused one can be detached by the proxy worker).
  const out = await s.run({ [s.inputNames[0] as string]: new ort.Tensor('float32', input.slice(), [1, 1, 28, 28]) });
  return softmax(out.logits?.data as Float32Array);
}

export async function runOnServer(
  model: ModelEntry,
  input: Float32Array,
): Promise<{ probabilities: number[]; serverMs: number }> {
  const response = await fetch(`/predict/${model.name}/${model.version}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pixels: Array.from(input) }),
  });
  const body = (await response.json()) as { probabilities?: number[]; latencyMs?: number; error?: { message: string } };
  if (!response.ok || !body.probabilities) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return { probabilities: body.probabilities, serverMs: body.latencyMs ?? 0 };
}
