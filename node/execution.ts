/**
 * Where ORT runs: execution-provider choice and session options.
 *
 * 'cpu' always works. 'cuda' needs onnxruntime-node's CUDA provider, which a plain install lacks
 * (`ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install` brings it).
 * 'webgpu' needs a WebGPU adapter (Dawn on Vulkan). 'auto' tries CUDA, then falls back to CPU with a
 * one-line notice.
 */
import * as ort from 'onnxruntime-node';
import type {
  NodeDevice as Device,
  OrtRuntime,
  NodeProvider as Provider,
  SessionSettings as RuntimeSettings,
} from '../core/ort-runtime.ts';

// Probing for CUDA or WebGPU makes onnxruntime log a red native error before it throws; we turn the
// throw into one clear line, so its log would only be noise.
ort.env.logLevel = 'fatal';

export class DeviceUnavailableError extends Error {
  override name = 'DeviceUnavailableError';
}

/** Session settings narrowed to the devices onnxruntime-node offers. */
interface SessionSettings extends RuntimeSettings {
  device?: Device;
}

const WHY: Record<Exclude<Provider, 'cpu'>, string> = {
  cuda: 'onnxruntime-node was installed without its CUDA provider (add it with `ONNXRUNTIME_NODE_INSTALL=cuda12 node node_modules/onnxruntime-node/script/install`; needs CUDA 12 and cuDNN 9)',
  webgpu: 'no WebGPU adapter was found (the WebGPU provider needs a Vulkan driver; see docs/gpus.md)',
};

/** Our one-line explanation of why `provider` is missing, with the runtime's own first line in brackets. */
export function unavailableReason(provider: Exclude<Provider, 'cpu'>, detail: string): string {
  return `${provider} is not available: ${WHY[provider]} [${detail.split('\n')[0]?.slice(0, 200)}]`;
}

export function sessionOptions(
  provider: Provider,
  settings: SessionSettings = {},
): ort.InferenceSession.SessionOptions {
  const threads = settings.threads ?? 1;
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: [provider],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential', // 'parallel' measured 2-10× slower for these graphs
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
  };
  // A developer's trace of every session (ORT's JSON profile: each node's time and execution provider).
  const profile = process.env.MNIST_ONNX_CNN_ORT_PROFILE;
  if (profile) Object.assign(options, { enableProfiling: true, profileFilePrefix: profile });
  // Spinning threads burn a shared core while waiting; off unless the step runs on one thread anyway.
  if (threads > 1) options.extra = { session: { intra_op: { allow_spinning: '0' } } };
  if (provider === 'webgpu') {
    options.preferredOutputLocation = 'cpu';
    const webgpu: Record<string, unknown> = { name: 'webgpu', preferredLayout: 'NCHW' };
    // ORT rejects an empty option value, so the list goes in only when it names nodes.
    if (settings.forceCpuNodeNames?.length) webgpu.forceCpuNodeNames = settings.forceCpuNodeNames;
    options.executionProviders = [webgpu as unknown as ort.InferenceSession.ExecutionProviderConfig];
  }
  return options;
}

async function tryCreate(
  model: Uint8Array,
  provider: Provider,
  settings: SessionSettings,
): Promise<ort.InferenceSession> {
  try {
    return await ort.InferenceSession.create(model, sessionOptions(provider, settings));
  } catch (error) {
    if (provider === 'cpu') throw error;
    throw new DeviceUnavailableError(unavailableReason(provider, (error as Error).message));
  }
}

/** Create a session on the requested device; returns which provider it got. */
export async function createSession(
  model: Uint8Array,
  settings: SessionSettings = {},
): Promise<{ session: ort.InferenceSession; provider: Provider }> {
  const device = settings.device ?? 'cpu';
  if (device !== 'auto') return { session: await tryCreate(model, device, settings), provider: device };
  try {
    return { session: await tryCreate(model, 'cuda', settings), provider: 'cuda' };
  } catch (error) {
    settings.onNotice?.(`device auto: using the CPU (${(error as Error).message.split(' [')[0]})`);
    return { session: await tryCreate(model, 'cpu', settings), provider: 'cpu' };
  }
}

/** onnxruntime-node as the Trainer's injected runtime (the CLI's, the tests' and the benchmarks' default). */
export const nodeRuntime: OrtRuntime = {
  Tensor: ort.Tensor,
  createSession(model, settings) {
    if (settings.device === 'wasm') throw new DeviceUnavailableError("wasm is onnxruntime-web's device, not Node's");
    return createSession(model, { ...settings, device: settings.device });
  },
};
