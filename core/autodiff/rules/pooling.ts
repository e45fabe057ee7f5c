/**
 * Pooling gradients.
 *
 * MaxPool routes each output's gradient to the input element that won the window, found through the
 * forward node's `Indices` output (flat N·C·H·W positions; ties go to the first element). Never an
 * equality mask: MNIST's flat background ties everywhere and a mask would credit every tied element.
 * Non-overlapping windows use MaxUnpool (each input is in one window) or, when the autotuner measured it
 * faster for the shape, ScatterElements with reduction 'add' — which overlapping ones always use (an
 * input can win several windows). Square windows that tile the input (stride = kernel, no padding) have a
 * third routing, 'first-max', that needs no Indices — ORT's MaxPool with Indices runs a slow generic
 * kernel (measured 0.84 ms vs 0.2 ms without, for 32×10×24×24) — and finds each window's winner with
 * ArgMax instead (`firstMax` below); and a fourth, 'first-max-mask', the same winner found and routed by
 * float ops alone (ReduceMax, Equal, Where): only ops the WebGPU provider runs (it has neither MaxPool's
 * Indices, MaxUnpool nor an int64 Cast, and each node left on the CPU costs a device round trip per step).
 *
 * AveragePool spreads dY/count evenly over each window: a depthwise ConvTranspose with a constant
 * kernel of ones, divided by the window's count (k², or the in-bounds count when count_include_pad=0).
 * With stride 1 the box filter is its own adjoint, so the gradient is itself an AveragePool of dY, padded
 * by k − 1 − p on each side (with count_include_pad=0, of dY already divided by each window's count, times
 * k²): one cheap op where ORT runs a depthwise ConvTranspose as a slow per-channel GEMM (measured: the
 * inception joins' ConvTranspose took ~1 ms of a 48 ms step for [64, 10, 12, 12]).
 */

import { int, ints, str } from '../../../onnx/attributes.ts';
import type { GraphBuilder } from '../../../onnx/builder.ts';
import type { NodeProto } from '../../../onnx/schema.ts';
import { floatTensor, int64Tensor } from '../../../onnx/tensor.ts';
import { attrInt, attrInts, dY, type GradientRule, input, type RuleContext, staticDim } from '../rule.ts';

/** A pooling node's window: kernel, strides (default 1) and pads (default 0). */
export function windowOf(node: NodeProto): { kernel: number[]; strides: number[]; pads: number[] } {
  const kernel = attrInts(node, 'kernel_shape', []);
  return {
    kernel,
    strides: attrInts(
      node,
      'strides',
      kernel.map(() => 1),
    ),
    pads: attrInts(node, 'pads', [0, 0, 0, 0]),
  };
}

/**
 * How MaxPool's gradient is routed: MaxUnpool (non-overlapping windows only), ScatterElements 'add', or
 * the first maximum, found by ArgMax and routed by MaxUnpool or found and routed by a float mask (square
 * windows that tile the input; see above).
 */
export const MAX_POOL_GRADIENTS = ['unpool', 'scatter', 'first-max', 'first-max-mask'] as const;
export type MaxPoolGradient = (typeof MAX_POOL_GRADIENTS)[number];
/**
 * The routings the CPU autotuner times: the mask is for GPU providers (not measured against the others on the
 * CPU), so CPU steps and their cached choices stay as they were.
 */
export const CPU_MAX_POOL_GRADIENTS = ['unpool', 'scatter', 'first-max'] as const satisfies readonly MaxPoolGradient[];

/** A MaxPool node's static geometry: what the routing's speed depends on (and the autotuner's key). */
export interface MaxPoolGeometry {
  /** Channels, height, width (the batch may be dynamic). */
  input: [number, number, number];
  kernel: number[];
  strides: number[];
  pads: number[];
}

export function maxPoolGeometryOf(g: GraphBuilder, node: NodeProto): MaxPoolGeometry {
  const xShape = g.shapeOf(node.input[0] as string);
  const what = 'MaxPool input';
  return {
    input: [staticDim(xShape, 1, what), staticDim(xShape, 2, what), staticDim(xShape, 3, what)],
    ...windowOf(node),
  };
}

/** The first-max routing needs square windows that tile the input without padding. */
export const tiles = (geo: Pick<MaxPoolGeometry, 'kernel' | 'strides' | 'pads'>) =>
  geo.kernel.length === 2 && geo.kernel[0] === geo.kernel[1] && nonOverlapping(geo);

/** MaxUnpool needs every input element in at most one window. */
export const nonOverlapping = (geo: Pick<MaxPoolGeometry, 'kernel' | 'strides' | 'pads'>) =>
  geo.kernel.every((k, i) => k === geo.strides[i]) && geo.pads.every((p) => p === 0);

/** The MaxPool rule; `choose` picks the routing for non-overlapping windows (overlapping ones scatter). */
export function maxPoolRule(choose: (geo: MaxPoolGeometry) => MaxPoolGradient = () => 'unpool'): GradientRule {
  return (c) => {
    const x = input(c, 0);
    const { kernel, strides, pads } = windowOf(c.node);
    if (attrInt(c.node, 'ceil_mode', 0) !== 0 || attrInts(c.node, 'dilations', [1, 1]).some((d) => d !== 1)) {
      throw new Error(`MaxPool gradient supports ceil_mode 0 and dilation 1 only (node '${c.node.name}')`);
    }
    const d = dY(c);
    let routing = nonOverlapping({ kernel, strides, pads }) ? choose(maxPoolGeometryOf(c.g, c.node)) : 'scatter';
    if (routing === 'first-max' || routing === 'first-max-mask') {
      if (tiles({ kernel, strides, pads }))
        return [routing === 'first-max' ? firstMax(c, x, d) : firstMaxMask(c, x, d)];
      routing = 'unpool';
    }
    // Ask the forward node for its Indices output.
    if (c.node.output.length < 2) c.node.output.push(c.g.uniqueName(`${c.node.name}_indices`));
    const indices = c.node.output[1] as string;
    const xShape = c.g.op('Shape', [x]);
    if (routing === 'unpool') {
      return [c.g.op('MaxUnpool', [d, indices, xShape], { kernel_shape: ints(kernel), strides: ints(strides) })];
    }
    const flat = c.g.constant(int64Tensor([1], [-1]), 'flat');
    const zeros = c.g.op('ConstantOfShape', [c.g.op('ReduceProd', [xShape], { keepdims: int(1) })]);
    const scattered = c.g.op(
      'ScatterElements',
      [zeros, c.g.op('Reshape', [indices, flat]), c.g.op('Reshape', [d, flat])],
      { axis: int(0), reduction: str('add') },
    );
    return [c.g.op('Reshape', [scattered, xShape])];
  };
}

/** A tiling max-pool's geometry, and its input cut to whole windows (rows and columns past the last take part in none). */
function tiledInput(c: RuleContext, x: string) {
  const { g } = c;
  const [channels, h, w] = maxPoolGeometryOf(g, c.node).input;
  const k = attrInts(c.node, 'kernel_shape', [])[0] as number;
  const [ho, wo] = [Math.floor(h / k), Math.floor(w / k)];
  const i64 = (dims: number[], values: number[], hint: string) => g.constant(int64Tensor(dims, values), hint);
  const whole = ho * k === h && wo * k === w;
  const covered = whole
    ? x
    : g.op('Slice', [x, i64([2], [0, 0], 'starts'), i64([2], [ho * k, wo * k], 'ends'), i64([2], [2, 3], 'axes')]);
  return { g, channels, h, w, k, ho, wo, i64, whole, covered };
}

/**
 * dX for square k×k windows with stride k, without MaxPool's Indices: SpaceToDepth puts each window's k²
 * elements on an axis of their own, ArgMax finds the first maximal one (ties: the first, as Indices and
 * PyTorch say), and its flat position (window origin + row · W + column) feeds MaxUnpool.
 */
function firstMax(c: RuleContext, x: string, d: string): string {
  const { g, channels, h, w, k, ho, wo, i64, covered } = tiledInput(c, x);
  const windows = g.op('Reshape', [
    g.op('SpaceToDepth', [covered], { blocksize: int(k) }),
    i64([5], [-1, k * k, channels, ho, wo], 'windows_shape'),
  ]);
  const winner = g.op('ArgMax', [windows], { axis: int(1), keepdims: int(0) }); // [N, C, Ho, Wo], in 0…k²-1
  // Winner b is row b÷k, column b mod k of its window: b + (b÷k)·(W − k) elements past the window's origin
  // (arithmetic, not a Gather from a table: ORT's element-wise Gather took 0.16 ms for 32×10×12×12).
  const withinWindow = g.op('Add', [
    winner,
    g.op('Mul', [g.op('Div', [winner, i64([], [k], 'kernel')]), i64([], [w - k], 'row_skip')]),
  ]);
  const origins = new Array<number>(channels * ho * wo);
  for (let ch = 0; ch < channels; ch++)
    for (let i = 0; i < ho; i++)
      for (let j = 0; j < wo; j++) origins[(ch * ho + i) * wo + j] = ch * h * w + i * k * w + j * k;
  const batch = g.op('Gather', [g.op('Shape', [x]), i64([], [0], 'batch_axis')]);
  const imageStarts = g.op('Reshape', [
    g.op('Mul', [
      g.op('Range', [i64([], [0], 'zero'), batch, i64([], [1], 'one')]),
      i64([], [channels * h * w], 'image_size'),
    ]),
    i64([4], [-1, 1, 1, 1], 'per_image'),
  ]);
  const indices = g.op('Add', [
    g.op('Add', [withinWindow, i64([1, channels, ho, wo], origins, 'window_origins')]),
    imageStarts,
  ]);
  return g.op('MaxUnpool', [d, indices, g.op('Shape', [x])], {
    kernel_shape: ints([k, k]),
    strides: ints([k, k]),
  });
}

/**
 * dX for square k×k windows with stride k from reshapes and float ops alone (no ArgMax: WebGPU has no int64
 * Cast, so its int64 index went to the CPU and back): each window's k² elements on the last axis
 * ([N, C, Ho, k, Wo, k] → [N, C, Ho, Wo, k²]); the elements equal to the window's maximum score their
 * priority k², k² − 1, …, 1 (the first the highest), the others 0; dY goes to the one that scores the most —
 * the first maximum, as Indices and PyTorch say — then the windows go back to the image's layout. (NaN, where
 * training has already diverged: ORT's ReduceMax passes over a NaN after a window's first element, so such a
 * window routes to the first maximum of the rest; one that starts with NaN sends dY to all of its elements.)
 */
function firstMaxMask(c: RuleContext, x: string, d: string): string {
  const { g, channels, h, w, k, ho, wo, i64, whole, covered } = tiledInput(c, x);
  const swapInWindow = { perm: ints([0, 1, 2, 4, 3, 5]) }; // its own inverse
  const windows = g.op('Reshape', [
    g.op(
      'Transpose',
      [g.op('Reshape', [covered, i64([6], [-1, channels, ho, k, wo, k], 'rows_of_windows')])],
      swapInWindow,
    ),
    i64([5], [-1, channels, ho, wo, k * k], 'windows_last'),
  ]);
  const lastAxis = { axes: ints([4]), keepdims: int(1) };
  const isMax = g.op('Cast', [g.op('Equal', [windows, g.op('ReduceMax', [windows], lastAxis)])], { to: int(1) });
  const priorities = g.constant(
    floatTensor(
      [k * k],
      Array.from({ length: k * k }, (_, i) => k * k - i),
    ),
    'window_priorities',
  );
  const score = g.op('Mul', [isMax, priorities]);
  const routed = g.op('Where', [
    g.op('Equal', [score, g.op('ReduceMax', [score], lastAxis)]),
    g.op('Reshape', [d, i64([5], [-1, channels, ho, wo, 1], 'dy_per_window')]),
    g.constant(floatTensor([], [0]), 'zero'),
  ]);
  const image = g.op('Reshape', [
    g.op(
      'Transpose',
      [g.op('Reshape', [routed, i64([6], [-1, channels, ho, wo, k, k], 'windows_split')])],
      swapInWindow,
    ),
    i64([4], [-1, channels, ho * k, wo * k], 'covered_shape'),
  ]);
  // Rows and columns past the last whole window take part in no window: their gradient is 0.
  return whole ? image : g.op('Pad', [image, i64([8], [0, 0, 0, 0, 0, 0, h - ho * k, w - wo * k], 'uncovered')]);
}

export const MaxPool: GradientRule = maxPoolRule();

export const AveragePool: GradientRule = (c) => {
  const x = input(c, 0);
  const xShape = c.g.shapeOf(x);
  const yShape = c.g.shapeOf(c.node.output[0] as string);
  const { kernel, strides, pads } = windowOf(c.node);
  const includePad = attrInt(c.node, 'count_include_pad', 0) === 1;
  if (attrInt(c.node, 'ceil_mode', 0) !== 0 || kernel.length !== 2) {
    throw new Error(`AveragePool gradient supports 2-D pooling with ceil_mode 0 only (node '${c.node.name}')`);
  }
  const [kh, kw] = kernel as [number, number];
  const channels = staticDim(xShape, 1, 'AveragePool input');
  const [h, w] = [staticDim(xShape, 2, 'AveragePool input'), staticDim(xShape, 3, 'AveragePool input')];
  const [ho, wo] = [staticDim(yShape, 2, 'AveragePool output'), staticDim(yShape, 3, 'AveragePool output')];
  const d = dY(c);
  const constantCount = includePad || pads.every((p) => p === 0);
  const adjointPads = pads.map((p, i) => (kernel[i % 2] as number) - 1 - p);
  if (strides.every((s) => s === 1) && adjointPads.every((p) => p >= 0)) {
    // count_include_pad=0: k² over each window's in-bounds count undoes AveragePool's 1/k².
    const scale = () =>
      c.g.constant(floatTensor([ho, wo], overWindowCounts(kh * kw, kernel, strides, pads, [h, w], [ho, wo])), 'scale');
    const input = constantCount ? d : c.g.op('Mul', [d, scale()]);
    return [
      c.g.op('AveragePool', [input], {
        kernel_shape: ints(kernel),
        pads: ints(adjointPads),
        count_include_pad: int(1),
      }),
    ];
  }

  let scaled: string;
  if (constantCount) {
    scaled = c.g.op('Mul', [d, c.g.constant(floatTensor([], [1 / (kh * kw)]), 'inv_count')]);
  } else {
    // Each output position divides by how many of its window's taps were inside the input.
    const inv = overWindowCounts(1, kernel, strides, pads, [h, w], [ho, wo]);
    scaled = c.g.op('Mul', [d, c.g.constant(floatTensor([ho, wo], inv), 'inv_count')]);
  }
  const ones = c.g.constant(floatTensor([channels, 1, kh, kw], new Float32Array(channels * kh * kw).fill(1)), 'ones');
  const leftover = [0, 1]
    .map((i) => ([h, w][i] as number) + (pads[i] as number) + (pads[i + 2] as number) - (kernel[i] as number))
    .map((span, i) => span % (strides[i] as number));
  return [
    c.g.op('ConvTranspose', [scaled, ones], {
      group: int(channels),
      kernel_shape: ints(kernel),
      strides: ints(strides),
      pads: ints(pads),
      output_padding: ints(leftover),
    }),
  ];
};

/** `numerator` over the in-bounds tap count of each output's window, for every output position [ho·wo]. */
function overWindowCounts(
  numerator: number,
  kernel: number[],
  strides: number[],
  pads: number[],
  size: number[],
  out: number[],
): Float32Array {
  const inside = (o: number, i: number) => {
    const start = o * (strides[i] as number) - (pads[i] as number);
    return Math.min(start + (kernel[i] as number), size[i] as number) - Math.max(start, 0);
  };
  const [ho, wo] = out as [number, number];
  const values = new Float32Array(ho * wo);
  for (let y = 0; y < ho; y++)
    for (let z = 0; z < wo; z++) values[y * wo + z] = numerator / (inside(y, 0) * inside(z, 1));
  return values;
}
