/**
 * The optional native kernels (native/, a small N-API addon that `npm install` builds with the machine's
 * own compiler for its own CPU). Absent — no compiler at install, a failed build, or
 * MNIST_ONNX_CNN_NATIVE=0 — training runs the pure-ORT graph, with the same results up to float rounding.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ConvGeometry } from '../core/autodiff/rules/conv-weight-gradient.ts';
import type { NativeUpdate } from '../core/training/optim/index.ts';

export interface NativeKernels {
  /**
   * dW [M, C, kh, kw] of a 2-D convolution from its input X [n, C, H, W] and output gradient dY [n, M, Ho, Wo],
   * written into `dw` (overwritten), on `threads` threads.
   */
  convWeightGradient(
    x: Float32Array,
    dY: Float32Array,
    dw: Float32Array,
    geometry: ConvGeometry,
    n: number,
    threads?: number,
  ): void;
  /**
   * dX [n, C, H, W] of a 2-D convolution from its output gradient dY [n, M, Ho, Wo] and weight W [M, C, kh, kw],
   * written into `dx` (overwritten), on `threads` threads.
   */
  convInputGradient(
    dY: Float32Array,
    w: Float32Array,
    dx: Float32Array,
    geometry: ConvGeometry,
    n: number,
    threads?: number,
  ): void;
  /**
   * dX [N, C, H, W] of a k×k, stride-k max-pool from its input X and dY [N, C, ⌊H/k⌋, ⌊W/k⌋]: first maxima.
   * With `relu`, X is a ReLU's output and the ReLU's gradient is folded in (a window whose maximum is 0 gets 0).
   */
  maxPoolGradient(
    x: Float32Array,
    dY: Float32Array,
    dx: Float32Array,
    dims: readonly number[],
    k: number,
    relu?: boolean,
  ): void;
  /** dX = dY where the ReLU's output Y > 0, else 0. */
  reluGradient(y: Float32Array, dY: Float32Array, dx: Float32Array): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** out = a · b elementwise. */
  multiply(a: Float32Array, b: Float32Array, out: Float32Array): void;
  /** out[j] = src[map[j]], 0 where map[j] is -1 (a JS loop where the addon predates it). */
  gather(src: Float32Array, out: Float32Array, map: Int32Array): void;
  /** dB [C] = Σ over images and positions of dY [n, C, positions]. */
  biasGradient(dY: Float32Array, db: Float32Array, n: number, channels: number, positions: number): void;
  /**
   * dX of an average pool whose divisor is the window's area (count_include_pad, or unpadded), for an input
   * of `dims` [N, C, H, W], `kernel` [kh, kw], `strides` [sh, sw] and `pads` [top, left, bottom, right].
   */
  avgPoolGradient(
    dY: Float32Array,
    dx: Float32Array,
    dims: readonly number[],
    kernel: readonly number[],
    strides: readonly number[],
    pads: readonly number[],
  ): void;
  /**
   * A BatchNorm's dX [n, C, positions] from its input `x`, γ, the statistics it normalized by (`mean` and
   * `invStd` = 1/√(var + ε), [C] each) and dY; through the statistics too when `statistics` (the batch's own).
   */
  batchNormInputGradient(
    x: Float32Array,
    gamma: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    dY: Float32Array,
    dx: Float32Array,
    dims: readonly [n: number, channels: number, positions: number],
    statistics: boolean,
    threads?: number,
  ): void;
  /** A BatchNorm's dγ [C] = Σ dY·x̂ over images and positions. */
  batchNormScaleGradient(
    x: Float32Array,
    mean: Float32Array,
    invStd: Float32Array,
    dY: Float32Array,
    dgamma: Float32Array,
    dims: readonly [n: number, channels: number, positions: number],
    threads?: number,
  ): void;
  /**
   * dW [out, in] = dYᵀ·X of a fully connected layer from X [n, in] and dY [n, out], written into `dw`, by
   * the machine's OpenBLAS on `threads` threads. Absent without OpenBLAS (see `blas`) or with
   * MNIST_ONNX_CNN_BLAS=0: the trainer then keeps ORT's Gemm for it.
   */
  linearWeightGradient?(
    x: Float32Array,
    dY: Float32Array,
    dw: Float32Array,
    n: number,
    inFeatures: number,
    outFeatures: number,
    threads?: number,
  ): void;
  /** The BLAS library linearWeightGradient calls, as it describes itself (absent with the kernel). */
  blas?: string;
  /**
   * The optimizer's update of `param` and its `states` (its slots, in order) in place, from the gradient
   * Σ shares[j] · parts[j] (or parts[0] alone when `shares` is null), as the update graph computes it.
   * Absent from an addon built before it was added (the trainer then runs the update graph).
   */
  optimizerUpdate?(update: NativeUpdate, ...rest: UpdateArguments): void;
}

/** The optimizer update's arguments after what it is (the same for the wrapper and the addon). */
export type UpdateArguments = [
  lr: number,
  step: number,
  param: Float32Array,
  states: readonly Float32Array[],
  parts: readonly Float32Array[],
  shares: Float32Array | null,
];

interface Addon {
  convWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array, threads: number): void;
  convInputGradient(dy: Float32Array, w: Float32Array, dx: Float32Array, shape: Int32Array, threads: number): void;
  maxPoolGradient(x: Float32Array, dy: Float32Array, dx: Float32Array, shape: Int32Array): void;
  reluGradient(y: Float32Array, dy: Float32Array, dx: Float32Array): void;
  add(a: Float32Array, b: Float32Array, out: Float32Array): void;
  multiply(a: Float32Array, b: Float32Array, out: Float32Array): void;
  biasGradient(dy: Float32Array, db: Float32Array, shape: Int32Array): void;
  avgPoolGradient(dy: Float32Array, dx: Float32Array, shape: Int32Array): void;
  batchNormInputGradient(...arrays: [...Float32Array[], Int32Array]): void;
  batchNormScaleGradient(...arrays: [...Float32Array[], Int32Array]): void;
  optimizerUpdate?(kind: number, hyper: Float32Array, ...rest: UpdateArguments): void;
  linearWeightGradient?(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array, threads: number): void;
  /** The OpenBLAS found (loaded by the first call), null without one; absent from builds before it. */
  blasName?(): string | null;
  /** Absent from builds before it (the JS gather stands in). */
  gather?(src: Float32Array, out: Float32Array, map: Int32Array): void;
}

const ADDON_FUNCTIONS: (keyof Addon)[] = [
  'convWeightGradient',
  'convInputGradient',
  'maxPoolGradient',
  'reluGradient',
  'add',
  'multiply',
  'biasGradient',
  'avgPoolGradient',
  'batchNormInputGradient',
  'batchNormScaleGradient',
];

const ADDON_PATH = new URL('../native/build/Release/mnist_native.node', import.meta.url).pathname;

let loaded: { kernels?: NativeKernels; why: string } | undefined;

/** The kernels, or undefined with the reason in `nativeKernelsStatus()`. */
export function nativeKernels(): NativeKernels | undefined {
  return load().kernels;
}

/**
 * A short hash of the built addon, or undefined without one: autotune picks between native and ORT kernels are
 * cached under it, so a rebuilt addon (faster or slower kernels) is timed again instead of trusted.
 */
export function nativeKernelsBuild(): string | undefined {
  if (!load().kernels) return undefined;
  build ??= createHash('sha256').update(readFileSync(ADDON_PATH)).digest('hex').slice(0, 12);
  return build;
}
let build: string | undefined;

/** One line saying whether the native kernels run, and why not. */
export function nativeKernelsStatus(): string {
  return load().why;
}

function load(): { kernels?: NativeKernels; why: string } {
  if (loaded) return loaded;
  if (process.env.MNIST_ONNX_CNN_NATIVE === '0') {
    loaded = { why: 'native kernels off (MNIST_ONNX_CNN_NATIVE=0)' };
    return loaded;
  }
  try {
    const addon = createRequire(import.meta.url)(ADDON_PATH) as Addon;
    // A build from before a kernel was added: the step would fail midway, so none of it is used.
    const missing = ADDON_FUNCTIONS.filter((name) => typeof addon[name] !== 'function');
    if (missing.length > 0) throw new Error(`an older build without ${missing.join(', ')}`);
    const kernels = wrap(addon);
    const blas = kernels.blas ? `; fully connected weight gradients by ${kernels.blas}` : '';
    loaded = { kernels, why: `native conv gradient kernels${blas}` };
  } catch (error) {
    const first = (error as Error).message.split('\n')[0];
    loaded = { why: `no native kernels (${first}); run \`npm run build:native\` to build them` };
  }
  return loaded;
}

/** The addon's shape argument: [N, C, H, W, M, Ho, Wo, kh, kw, sh, sw, pt, pl, dh, dw]. */
const shapeOf = (geo: ConvGeometry, n: number) =>
  Int32Array.of(
    n,
    ...geo.input,
    ...geo.output,
    ...geo.kernel,
    ...geo.strides,
    geo.pads[0],
    geo.pads[1],
    ...geo.dilations,
  );

function wrap(addon: Addon): NativeKernels {
  return {
    convWeightGradient(x, dY, dw, geo, n, threads = 1) {
      addon.convWeightGradient(x, dY, dw, shapeOf(geo, n), threads);
    },
    convInputGradient(dY, w, dx, geo, n, threads = 1) {
      addon.convInputGradient(dY, w, dx, shapeOf(geo, n), threads);
    },
    maxPoolGradient(x, dY, dx, dims, k, relu = false) {
      addon.maxPoolGradient(x, dY, dx, Int32Array.of(...dims, k, relu ? 1 : 0));
    },
    reluGradient: (y, dY, dx) => addon.reluGradient(y, dY, dx),
    add: (a, b, out) => addon.add(a, b, out),
    multiply: (a, b, out) => addon.multiply(a, b, out),
    gather: addon.gather ? (src, out, map) => addon.gather?.(src, out, map) : gatherInJs,
    biasGradient(dY, db, n, channels, positions) {
      addon.biasGradient(dY, db, Int32Array.of(n, channels, positions));
    },
    avgPoolGradient(dY, dx, dims, kernel, strides, pads) {
      addon.avgPoolGradient(dY, dx, Int32Array.of(...dims, ...kernel, ...strides, ...pads));
    },
    batchNormInputGradient(x, gamma, mean, invStd, dY, dx, dims, statistics, threads = 1) {
      addon.batchNormInputGradient(x, gamma, mean, invStd, dY, dx, Int32Array.of(...dims, statistics ? 1 : 0, threads));
    },
    batchNormScaleGradient(x, mean, invStd, dY, dgamma, dims, threads = 1) {
      addon.batchNormScaleGradient(x, mean, invStd, dY, dgamma, Int32Array.of(...dims, threads));
    },
    optimizerUpdate: addon.optimizerUpdate && optimizerUpdate(addon.optimizerUpdate.bind(addon)),
    ...linearWeights(addon),
  };
}

/** The OpenBLAS weight gradient when it is wanted and the addon finds the library (only then loaded). */
function linearWeights(addon: Addon): Pick<NativeKernels, 'linearWeightGradient' | 'blas'> {
  const kernel = addon.linearWeightGradient;
  if (!kernel || !addon.blasName || process.env.MNIST_ONNX_CNN_BLAS === '0') return {};
  const blas = addon.blasName();
  if (typeof blas !== 'string') return {};
  return {
    linearWeightGradient(x, dY, dw, n, inFeatures, outFeatures, threads = 1) {
      kernel.call(addon, x, dY, dw, Int32Array.of(n, inFeatures, outFeatures), threads);
    },
    blas,
  };
}

/** The addon's update with its (kind, hyperparameters) arguments made from the optimizer's description. */
function optimizerUpdate(update: NonNullable<Addon['optimizerUpdate']>): NativeKernels['optimizerUpdate'] {
  // Made once per optimizer description: a trainer calls the update per parameter, every step.
  const hypers = new WeakMap<NativeUpdate, Float32Array>();
  const hyper = (u: NativeUpdate) => {
    let values = hypers.get(u);
    if (!values) {
      values =
        u.kind === 'sgd'
          ? Float32Array.of(u.momentum, u.weightDecay, u.nesterov ? 1 : 0)
          : Float32Array.of(u.beta1, u.beta2, u.eps, u.weightDecay, u.decoupled ? 1 : 0);
      hypers.set(u, values);
    }
    return values;
  };
  return (u, ...rest) => update(u.kind === 'sgd' ? 0 : 1, hyper(u), ...rest);
}

function gatherInJs(src: Float32Array, out: Float32Array, map: Int32Array): void {
  if (map.length !== out.length) throw new Error('gather: map and out differ in length');
  for (let j = 0; j < map.length; j++) {
    const from = map[j] as number;
    out[j] = from < 0 ? 0 : (src[from] as number);
  }
}
