/**
 * The ways the bench runs PyTorch at N threads, and keeping the faster. torch.set_num_threads(N) always;
 * OpenBLAS's own pool either matches it or is 1 thread — with both at N, a BLAS call made from inside
 * torch's parallel regions can start N more threads on the same cores (mlp's PyTorch step at 2 threads
 * ran at a quarter of its 1-thread speed in the earlier results). Which is faster depends on the model and
 * the machine, so with more than one thread both are measured each round and each row keeps the better
 * median.
 */
import { median } from './stats.ts';

/** How one PyTorch process is started: torch.set_num_threads(threads), OPENBLAS_NUM_THREADS=blasThreads. */
export interface TorchConfig {
  threads: number;
  blasThreads: number;
}

/** The thread settings a PyTorch process reported for its measurement (torch_settings.threads()). */
export interface TorchThreads {
  /** torch.get_num_threads() */
  torch: number;
  /** torch.get_num_interop_threads() */
  interop: number;
  /** OpenBLAS's openblas_get_num_threads(), or null when the BLAS is not OpenBLAS. */
  blas: number | null;
  /** OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS, OPENBLAS_CORETYPE as the process saw them. */
  env: Record<string, string | null>;
}

/** The configurations tried at `threads`: BLAS threads matching torch's, and (with > 1 thread) 1. */
export function torchConfigs(threads: number): TorchConfig[] {
  return threads > 1
    ? [
        { threads, blasThreads: threads },
        { threads, blasThreads: 1 },
      ]
    : [{ threads, blasThreads: 1 }];
}

/**
 * The child's environment: OMP_NUM_THREADS = torch's threads, OPENBLAS_NUM_THREADS as configured, and
 * OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE — set on some machines for old OpenBLAS builds — dropped, since
 * they pin slower kernels.
 */
export function torchEnv(config: TorchConfig): NodeJS.ProcessEnv {
  const { OPENBLAS_CORETYPE: _core, OPENBLAS_L2_SIZE: _l2, ...env } = process.env;
  return { ...env, OPENBLAS_NUM_THREADS: String(config.blasThreads), OMP_NUM_THREADS: String(config.threads) };
}

/** "torch 2 thr, OpenBLAS 1 thr" from what the process reported (not from what was asked). */
export function threadsLabel(t: TorchThreads): string {
  return `torch ${t.torch} thr, ${t.blas === null ? 'BLAS not OpenBLAS' : `OpenBLAS ${t.blas} thr`}`;
}

/** A row's PyTorch figure: the better configuration's median, what it ran with, and every configuration's median. */
export interface KeptConfig {
  value: number;
  threads: TorchThreads;
  /** Each configuration tried, with its median: the JSON keeps them all. */
  tried: { config: TorchConfig; threads: TorchThreads; median: number }[];
}

/** One measurement of every configuration per round, gathered across alternating rounds. */
export class TorchRounds<T extends { threads: TorchThreads }> {
  private readonly runs: T[][];

  constructor(readonly configs: TorchConfig[]) {
    this.runs = configs.map(() => []);
  }

  /** One round: each configuration once, in order. */
  measure(run: (config: TorchConfig) => T): void {
    for (const [i, config] of this.configs.entries()) this.runs[i]?.push(run(config));
  }

  /** The configuration whose median of `metric` is best ('higher' for images/s, 'lower' for ms or s). */
  keep(metric: (result: T) => number, better: 'higher' | 'lower'): KeptConfig & { results: T[] } {
    const tried = this.configs.map((config, i) => {
      const results = this.runs[i] ?? [];
      const first = results[0];
      if (!first) throw new Error('no PyTorch rounds measured');
      return { config, threads: first.threads, median: median(results.map(metric)), results };
    });
    const kept = tried.reduce((a, b) => ((better === 'higher' ? b.median > a.median : b.median < a.median) ? b : a));
    return {
      value: kept.median,
      threads: kept.threads,
      results: kept.results,
      tried: tried.map(({ config, threads, median }) => ({ config, threads, median })),
    };
  }
}
