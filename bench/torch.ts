/** Running Debian's PyTorch beside us, when it is installed (the project never needs it). */
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';

const script = (name: string) => fileURLToPath(new URL(`./${name}`, import.meta.url));

/** Which PyTorch, and which BLAS its process really mapped. */
export interface TorchInfo {
  version: string;
  /** Real paths of the BLAS/LAPACK libraries in the python process. */
  blas: string[];
  /** True when no optimized BLAS (OpenBLAS, MKL, BLIS, ATLAS) is among them: Linear layers then crawl. */
  referenceBlas: boolean;
}

/** PyTorch's version and BLAS, or undefined when torch is not installed. */
export function torchInfo(): TorchInfo | undefined {
  try {
    const out = execFileSync(PYTHON, [script('torch_train.py'), '--info'], { encoding: 'utf8', stdio: 'pipe' });
    const { version, blas } = JSON.parse(out.trim().split('\n').at(-1) as string) as {
      version: string;
      blas: string[];
    };
    return { version, blas, referenceBlas: !blas.some((path) => /openblas|mkl|blis|atlas/i.test(path)) };
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

/**
 * PyTorch's environment for a fair run: its BLAS gets exactly the threads torch is given (OpenBLAS
 * otherwise starts one per core beside torch's own), and OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE — set on
 * some machines for old OpenBLAS builds — are dropped, since they pin slower kernels.
 */
function torchEnv(args: string[]): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _core, OPENBLAS_L2_SIZE: _l2, ...env } = process.env;
  const threads = args[args.indexOf('--threads') + 1];
  return args.includes('--threads') && threads
    ? { ...env, OPENBLAS_NUM_THREADS: threads, OMP_NUM_THREADS: threads }
    : env;
}

function runJson<T>(file: string, args: string[]): T {
  const out = execFileSync(PYTHON, [script(file), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: torchEnv(args),
  });
  return JSON.parse(out.trim().split('\n').at(-1) as string) as T;
}

/** PyTorch's training images/s for a model, in a child process. */
export function torchTrainingThroughput(model: string, threads: number, batch: number, seconds: number): number {
  const args = ['--model', model, '--threads', String(threads), '--batch', String(batch), '--seconds', String(seconds)];
  return runJson<{ imagesPerSecond: number }>('torch_train.py', args).imagesPerSecond;
}

/** PyTorch eager inference for a model: median batch-1 latency (ms) and images/s at `batch`. */
export function torchInferenceSpeed(
  model: string,
  threads: number,
  batch: number,
  seconds: number,
): { latencyMs: number; imagesPerSecond: number } {
  const args = ['--model', model, '--threads', String(threads), '--batch', String(batch), '--seconds', String(seconds)];
  return runJson('torch_infer.py', args);
}
