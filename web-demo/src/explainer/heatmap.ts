/**
 * Heat maps of activations: every channel of a layer as a tile, tiles in a grid on one canvas (one canvas
 * per layer keeps the page light: Inception has ~400 channels). One colour scale per layer, symmetric
 * around zero — warm for positive, blue for negative, black for zero (ink is white on black, as in MNIST).
 */
import { sizeOf } from '../../../onnx/tensor.ts';

/** How a layer's output is laid out on its canvas. */
export interface Tiling {
  channels: number;
  /** Cells per tile (a vector is one tile of rows of VECTOR_WIDTH). */
  height: number;
  width: number;
  cols: number;
  rows: number;
}

/** A cell under the pointer: its channel and position in that channel's map. */
export interface Cell {
  channel: number;
  y: number;
  x: number;
}

const GAP = 1;
const VECTOR_WIDTH = 32;

/** NCHW outputs tile by channel, at most `maxCols` tiles a row; [1, N] vectors are one tile. */
export function tiling(dims: readonly number[], maxCols: number): Tiling {
  if (dims.length === 4) {
    const [, channels = 1, height = 1, width = 1] = dims;
    const cols = Math.max(1, Math.min(channels, maxCols));
    return { channels, height, width, cols, rows: Math.ceil(channels / cols) };
  }
  const n = sizeOf(dims.slice(1));
  const width = Math.min(n, VECTOR_WIDTH);
  return { channels: 1, height: Math.ceil(n / width), width, cols: 1, rows: 1 };
}

export function canvasSize(t: Tiling): { width: number; height: number } {
  return { width: t.cols * (t.width + GAP) - GAP, height: t.rows * (t.height + GAP) - GAP };
}

/** The cell at canvas pixel (px, py), or undefined in a gap or past the last channel. */
export function cellAt(t: Tiling, px: number, py: number): Cell | undefined {
  const col = Math.floor(px / (t.width + GAP));
  const row = Math.floor(py / (t.height + GAP));
  const x = Math.floor(px) - col * (t.width + GAP);
  const y = Math.floor(py) - row * (t.height + GAP);
  const channel = row * t.cols + col;
  if (x < 0 || y < 0 || x >= t.width || y >= t.height || col >= t.cols || channel >= t.channels) return undefined;
  if (t.channels === 1 && y * t.width + x >= t.height * t.width) return undefined;
  return { channel, y, x };
}

/** A cell's top-left corner in canvas pixels. */
export function cellOrigin(t: Tiling, cell: Cell): { x: number; y: number } {
  return {
    x: (cell.channel % t.cols) * (t.width + GAP) + cell.x,
    y: Math.floor(cell.channel / t.cols) * (t.height + GAP) + cell.y,
  };
}

/** Index of a cell's value in the layer's flat output. */
export function valueIndex(t: Tiling, cell: Cell): number {
  return (cell.channel * t.height + cell.y) * t.width + cell.x;
}

const STOPS_POSITIVE = [
  [0, 0, 0],
  [214, 84, 16],
  [255, 236, 160],
] as const;
const STOPS_NEGATIVE = [
  [0, 0, 0],
  [40, 96, 220],
  [170, 225, 255],
] as const;

/** t in [−1, 1] → RGB. */
export function colour(t: number): [number, number, number] {
  const stops = t < 0 ? STOPS_NEGATIVE : STOPS_POSITIVE;
  const a = Math.min(1, Math.abs(t)) * 2;
  const i = Math.min(1, Math.floor(a));
  const f = a - i;
  const lo = stops[i] as readonly number[];
  const hi = stops[i + 1] as readonly number[];
  return [0, 1, 2].map((k) => Math.round((lo[k] as number) + f * ((hi[k] as number) - (lo[k] as number)))) as [
    number,
    number,
    number,
  ];
}

/** Largest |value|, the layer's colour scale (1 when all are zero). */
export function scaleOf(values: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < values.length; i++) max = Math.max(max, Math.abs(values[i] as number));
  return max || 1;
}

/** Draw a layer's values (flat, channel-major) onto `canvas`, resizing it to the tiling. */
export function drawHeatmap(
  canvas: HTMLCanvasElement,
  t: Tiling,
  values: ArrayLike<number>,
  scale = scaleOf(values),
): void {
  const { width, height } = canvasSize(t);
  if (canvas.width !== width) canvas.width = width;
  if (canvas.height !== height) canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const image = ctx.createImageData(width, height);
  const perTile = t.height * t.width;
  for (let c = 0; c < t.channels; c++) {
    const ox = (c % t.cols) * (t.width + GAP);
    const oy = Math.floor(c / t.cols) * (t.height + GAP);
    for (let i = 0; i < perTile && c * perTile + i < values.length; i++) {
      const [r, g, b] = colour((values[c * perTile + i] as number) / scale);
      const p = ((oy + Math.floor(i / t.width)) * width + ox + (i % t.width)) * 4;
      image.data[p] = r;
      image.data[p + 1] = g;
      image.data[p + 2] = b;
      image.data[p + 3] = 255;
    }
  }
  ctx.putImageData(image, 0, 0);
}
