/**
 * The optional native kernels (native/, a small N-API addon that `npm install` builds with the machine's
 * own compiler for its own CPU). Absent — no compiler at install, a failed build, or
 * MNIST_ONNX_CNN_NATIVE=0 — training runs the pure-ORT graph, with the same results up to float rounding.
 */
import { createRequire } from 'node:module';
import type { ConvGeometry } from '../core/autodiff/rules/conv-weight-gradient.ts';

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
}

interface Addon {
  convWeightGradient(x: Float32Array, dy: Float32Array, dw: Float32Array, shape: Int32Array, threads: number): void;
}

const ADDON_PATH = new URL('../native/build/Release/mnist_native.node', import.meta.url).pathname;

let loaded: { kernels?: NativeKernels; why: string } | undefined;

/** The kernels, or undefined with the reason in `nativeKernelsStatus()`. */
export function nativeKernels(): NativeKernels | undefined {
  return load().kernels;
}

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
    loaded = { kernels: wrap(addon), why: 'native conv weight-gradient kernel' };
  } catch (error) {
    const first = (error as Error).message.split('\n')[0];
    loaded = { why: `no native kernels (${first}); run \`npm run build:native\` to build them` };
  }
  return loaded;
}

function wrap(addon: Addon): NativeKernels {
  return {
    convWeightGradient(x, dY, dw, geo, n, threads = 1) {
      const shape = Int32Array.of(
        n,
        ...geo.input,
        ...geo.output,
        ...geo.kernel,
        ...geo.strides,
        geo.pads[0],
        geo.pads[1],
        ...geo.dilations,
      );
      addon.convWeightGradient(x, dY, dw, shape, threads);
    },
  };
}
