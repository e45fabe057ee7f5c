/**
 * The machine a benchmark ran on, for its result file: CPU (model, vendor, family/model/stepping, the ISA
 * extensions that decide which kernels ORT, oneDNN and OpenBLAS pick), vCPUs, memory, OS, kernel, Node and
 * onnxruntime-node. Ratios against PyTorch moved 2–3× between two 2-vCPU machines of the same kind, so a
 * figure without its machine can't be checked. PyTorch's side reports its own build (torch.ts).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, release, totalmem, version } from 'node:os';
import * as ort from 'onnxruntime-node';
import { nativeKernelsStatus } from '../node/native-kernels.ts';

export interface Machine {
  cpu: {
    /** "model name" (x86) or the first core's model as Node reports it. */
    modelName: string;
    /** vendor_id (GenuineIntel, AuthenticAMD) or the ARM implementer code. */
    vendor: string;
    /** "6/143/8": cpu family / model / stepping, as /proc/cpuinfo has them ("?" where absent). */
    familyModelStepping: string;
    /** The ISA extensions that matter for kernels, in /proc/cpuinfo's order (avx2, fma, avx512*, amx*, …). */
    isa: string[];
    /** The "hypervisor" flag: a virtual machine, whose vCPUs may be hyperthreads of one core. */
    virtualized: boolean;
    /** cpuinfo's "cache size" (the last-level cache per package as the kernel sees it), if given. */
    cacheSize?: string;
    /** Logical CPUs the OS has. */
    vcpus: number;
    /** CPUs this process may run on (affinity, cgroups): what a thread count is measured against. */
    available: number;
  };
  memoryGiB: number;
  /** /etc/os-release's PRETTY_NAME. */
  os: string;
  /** uname -r and -v. */
  kernel: string;
  node: string;
  /** The process's Node and V8 flags (package.json's bench script gives the training flags, node/training-flags.ts). */
  nodeFlags?: string[];
  onnxruntimeNode: string;
  /** Whether our native kernels (native/) were built and loaded, as node/native-kernels.ts says. */
  nativeKernels: string;
  /** The commit the benchmark ran (and whether tracked files differed from it): what someone else checks out to repeat it. */
  code?: string;
}

/** Load average (1, 5, 15 minutes) before and after a benchmark: a busy machine's figures say so. */
export interface LoadAverages {
  before: number[];
  after: number[];
  /**
   * The share of the machine's CPU time (0..1) that other processes used in a quiet window just before the
   * run, while the bench itself slept: the load average also counts the bench's own start-up (tsx, PyTorch's
   * probe), so on its own it flags a run that nothing else disturbed. Undefined where /proc/stat is missing.
   */
  othersBefore?: number;
}

/** Flags that select kernels: SIMD width, FMA, AVX-512 subsets, AMX, VNNI/BF16, and ARM's NEON/SVE. */
const KERNEL_FLAGS = /^(sse4_2|avx|avx2|fma|f16c|avx512.*|avx_vnni.*|avx_ifma|amx.*|asimd.*|sve.*|sme\d*|bf16|i8mm)$/;

/** The first processor's fields in /proc/cpuinfo (empty where there is none: not Linux). */
function cpuinfo(): Map<string, string> {
  const path = '/proc/cpuinfo';
  const first = existsSync(path) ? (readFileSync(path, 'utf8').split('\n\n')[0] ?? '') : '';
  const fields = new Map<string, string>();
  for (const line of first.split('\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
  }
  return fields;
}

function osName(): string {
  const path = '/etc/os-release';
  const text = existsSync(path) ? readFileSync(path, 'utf8') : '';
  return /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(text)?.[1] ?? process.platform;
}

export function describeMachine(): Machine {
  const info = cpuinfo();
  const flags = (info.get('flags') ?? info.get('Features') ?? '').split(/\s+/);
  const field = (name: string) => info.get(name) ?? '?';
  return {
    cpu: {
      modelName: info.get('model name') ?? cpus()[0]?.model ?? 'unknown',
      vendor: info.get('vendor_id') ?? info.get('CPU implementer') ?? 'unknown',
      familyModelStepping: `${field('cpu family')}/${field('model')}/${field('stepping')}`,
      isa: flags.filter((flag) => KERNEL_FLAGS.test(flag)),
      virtualized: flags.includes('hypervisor'),
      cacheSize: info.get('cache size'),
      vcpus: cpus().length,
      available: availableParallelism(),
    },
    memoryGiB: totalmem() / 2 ** 30,
    os: osName(),
    kernel: `${release()} ${version()}`,
    node: process.version,
    nodeFlags: nodeFlags(process.execArgv),
    onnxruntimeNode: ort.env.versions.node ?? 'unknown',
    nativeKernels: nativeKernelsStatus(),
    code: codeRevision(),
  };
}

/** How many changed files `codeRevision` names before it counts the rest. */
const NAMED_CHANGES = 10;

/**
 * `git describe`-like: the commit, and when tracked files differ from it, which ones ("with uncommitted
 * changes to README.md, bench/cli.ts"): a reader can tell a docs edit from a code change. Undefined outside a
 * checkout.
 */
export function codeRevision(cwd = process.cwd()): string | undefined {
  const git = (...args: string[]) =>
    execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5000 });
  try {
    const commit = git('rev-parse', '--short=12', 'HEAD').trim();
    const changed = git('diff', 'HEAD', '--name-only', '-z')
      .split('\0')
      .filter((path) => path !== '');
    if (changed.length === 0) return commit;
    const named = changed.slice(0, NAMED_CHANGES).join(', ');
    const more = changed.length > NAMED_CHANGES ? ` and ${changed.length - NAMED_CHANGES} more` : '';
    return `${commit} with uncommitted changes to ${named}${more}`;
  } catch {
    return undefined;
  }
}

export const loadAverage = (): number[] => loadavg();

/** Flags from execArgv, without module loaders (tsx's --require and --import) or evaluated code, nor their values. */
const WITH_VALUE = new Set(['--require', '-r', '--import', '--eval', '-e', '--print', '-p']);

export function nodeFlags(execArgv: readonly string[]): string[] {
  const flags: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i] as string;
    if (WITH_VALUE.has(arg)) i++;
    else if (arg.startsWith('-') && !/^--(require|import|eval|print)=/.test(arg)) flags.push(arg);
  }
  return flags;
}

/** Busy and total jiffies of all CPUs from /proc/stat's first line (idle and iowait count as idle). */
function cpuJiffies(): { busy: number; total: number } | undefined {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
    return { busy: total - idle, total };
  } catch {
    return undefined;
  }
}

/** The machine's busy share (0..1) over `ms` in which this process only sleeps: other processes' CPU use. */
export async function othersCpuShare(ms = 3000): Promise<number | undefined> {
  const start = cpuJiffies();
  await new Promise((done) => setTimeout(done, ms));
  const end = cpuJiffies();
  if (!start || !end || end.total <= start.total) return undefined;
  return (end.busy - start.busy) / (end.total - start.total);
}
