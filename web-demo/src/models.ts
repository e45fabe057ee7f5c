/** The server's model list, and in-browser sessions on WebGPU or wasm (onnxruntime-web). */

import * as ort from 'onnxruntime-web/webgpu';
import { IMAGE_SHAPE } from '../../core/contract.ts';
import { softmax } from '../../core/softmax.ts';
import type { LocalModel } from './local-models.ts';
import { probeWebGpu } from './webgpu.ts';

export interface ModelEntry {
  name: string;
  version: number;
  accuracy?: string;
  label: string;
  /** A model made in this browser (not on the server): its model.onnx bytes. */
  local?: Uint8Array;
}

/** A model trained or fine-tuned in this browser, as a list entry (its save time is its version). */
export function localEntry(model: LocalModel): ModelEntry {
  const accuracy = model.accuracy?.toFixed(2);
  return {
    name: model.name,
    version: model.savedAt,
    accuracy,
    label: `${model.name} (this browser)${accuracy ? ` — ${accuracy}%` : ''}`,
    local: model.bytes,
  };
}

/** One model of GET /api/models, as far as the pages read it. */
export interface ApiModel {
  name: string;
  versions: { version: number; ready: boolean; metadata?: Record<string, string> }[];
}

/** The server's models (GET /api/models). */
export async function listServedModels(): Promise<ApiModel[]> {
  const response = await fetch('/api/models');
  if (!response.ok) throw new Error(`model list: HTTP ${response.status}`);
  return (await response.json()) as ApiModel[];
}

export async function fetchModels(): Promise<ModelEntry[]> {
  const list = await listServedModels();
  return list.flatMap((m) => {
    const ready = m.versions.filter((v) => v.ready);
    const newest = ready.at(-1);
    if (!newest) return [];
    // Shown only when it is a number: metadata is whatever the model's publisher wrote.
    const stated = newest.metadata?.test_accuracy;
    const accuracy = stated !== undefined && /^\d{1,3}(\.\d{1,4})?$/.test(stated) ? stated : undefined;
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
  const wasm = (why: string): Backend => {
    console.info(`Models run on wasm: ${why}.`); // the one line a machine without WebGPU gets
    return 'wasm';
  };
  switch (await probeWebGpu()) {
    case 'hardware':
      return 'webgpu';
    case 'absent':
      return wasm('this browser has no WebGPU');
    case 'failed':
      return wasm('WebGPU failed to start');
    case 'software':
      return wasm('the only WebGPU adapter is software'); // ~100× slower than wasm here
    case 'no-adapter':
      return 'wasm'; // the browser itself logs the one line (Chromium: “No available adapters.”)
  }
}

// wasm threads need cross-origin isolation; at batch 1 one thread is as fast anyway.
ort.env.wasm.numThreads = 1;

const files = new Map<string, Promise<Uint8Array>>();

/** The served model.onnx bytes, fetched once per model version (a local model's own bytes). */
export function modelBytes(model: ModelEntry): Promise<Uint8Array> {
  if (model.local) return Promise.resolve(model.local);
  const key = `${model.name}/${model.version}`;
  let bytes = files.get(key);
  if (!bytes) {
    bytes = (async () => {
      const response = await fetch(`/models/${model.name}/${model.version}/model.onnx`);
      if (!response.ok) throw new Error(`model file: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    })();
    files.set(key, bytes);
    bytes.catch(() => files.delete(key));
  }
  return bytes;
}

/** A copy of the model's bytes, to transfer to a worker or to ORT (the page keeps its own). */
export const modelBytesToTransfer = async (model: ModelEntry): Promise<Uint8Array> => (await modelBytes(model)).slice();

const sessions = new Map<string, Promise<ort.InferenceSession>>();

export function session(model: ModelEntry, backend: Backend): Promise<ort.InferenceSession> {
  const key = `${model.name}/${model.version}/${backend}`;
  let s = sessions.get(key);
  if (!s) {
    s = (async () => {
      // ORT may transfer the buffer to its worker, and the explainer reads the same bytes.
      const bytes = await modelBytesToTransfer(model);
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
  const out = await s.run({
    [s.inputNames[0] as string]: new ort.Tensor('float32', input.slice(), [1, ...IMAGE_SHAPE]),
  });
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
