/** Running Debian's PyTorch beside us, when it is installed (the project never needs it). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { mnistDataDir } from '../node/mnist.ts';
import { type TorchConfig, type TorchThreads, torchEnv } from './torch-config.ts';

/** Debian's python3 (its PyTorch), unless MNIST_ONNX_CNN_PYTHON names another (the GPU kit: the machine's own). */
export const PYTHON = process.env.MNIST_ONNX_CNN_PYTHON ?? '/usr/bin/python3';

const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** Which PyTorch, how it was built, and which BLAS its process really mapped (torch_settings.about()). */
export interface TorchInfo {
  version: string;
  /** Real paths of the BLAS/LAPACK libraries in the python process. */
  blas: string[];
  /** True when no optimized BLAS (OpenBLAS, MKL, BLIS, ATLAS) is among them: Linear layers then crawl. */
  referenceBlas: boolean;
  /** torch.__config__.show(): compiler, oneDNN, "CPU capability usage" (the ATen kernels' ISA), build flags. */
  config: string;
  /** torch.__config__.parallel_info() of the --info process (its defaults, not a row's settings). */
  parallelInfo: string;
  /** torch.backends.mkldnn.is_available(): whether convolutions can go through oneDNN. */
  mkldnn: boolean;
  /** OpenBLAS's build line and the core type whose kernels it picked for this CPU; null for other BLAS. */
  openblas: { config: string; coreName: string } | null;
}

/** PyTorch's version, build and BLAS, or undefined when torch is not installed. */
export function torchInfo(): TorchInfo | undefined {
  try {
    const out = execFileSync(PYTHON, [script('torch_train.py'), '--info'], { encoding: 'utf8', stdio: 'pipe' });
    const info = JSON.parse(out.trim().split('\n').at(-1) as string) as Omit<TorchInfo, 'referenceBlas'>;
    return { ...info, referenceBlas: !info.blas.some((path) => /openblas|mkl|blis|atlas/i.test(path)) };
  } catch {
    return undefined;
  }
}

/** A one-line description of torch's BLAS for tables: "OpenBLAS (pthread)" or the library's path. */
export function blasLabel(info: TorchInfo): string {
  const optimized = info.blas.find((path) => /openblas|mkl|blis|atlas/i.test(path));
  if (!optimized) return `reference BLAS (${info.blas.join(', ') || 'none found'})`;
  if (/openblas-pthread/.test(optimized)) return 'OpenBLAS (pthread)';
  if (/openblas-openmp/.test(optimized)) return 'OpenBLAS (OpenMP)';
  return optimized;
}

function runJson<T>(file: string, args: string[], config: TorchConfig): T {
  const out = execFileSync(PYTHON, [script(file), ...args, '--threads', String(config.threads)], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: torchEnv(config),
  });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as T;
}

export interface TorchTraining {
  imagesPerSecond: number;
  /** Eval-mode forward images/s at the same batch, in the same process and settings. */
  forwardImagesPerSecond: number;
  threads: TorchThreads;
}

/** PyTorch's training images/s for a model, then its forward images/s, in a child process. */
export function torchTrainingThroughput(
  model: string,
  config: TorchConfig,
  batch: number,
  seconds: number,
): TorchTraining {
  const args = ['--model', model, '--batch', String(batch), '--seconds', String(seconds), '--data', mnistDataDir()];
  return runJson('torch_train.py', [...args, '--forward-seconds', String(seconds)], config);
}

export interface TorchInference {
  latencyMs: number;
  imagesPerSecond: number;
  threads: TorchThreads;
}

/** PyTorch eager inference for a model: median batch-1 latency (ms) and images/s at `batch`. */
export function torchInferenceSpeed(
  model: string,
  config: TorchConfig,
  batch: number,
  seconds: number,
): TorchInference {
  const args = ['--model', model, '--batch', String(batch), '--seconds', String(seconds)];
  return runJson('torch_infer.py', args, config);
}

export interface TorchEpoch {
  seconds: number;
  testAccuracy: number;
  threads: TorchThreads;
}

/** One epoch of the tutorial recipe in PyTorch's own loop (bench/torch_epoch.py). */
export function torchEpoch(model: string, config: TorchConfig): TorchEpoch {
  return runJson('torch_epoch.py', ['--data', mnistDataDir(), '--model', model], config);
}
