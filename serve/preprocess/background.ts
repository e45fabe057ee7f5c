/**
 * The paper and its light: how bright the bare paper would be at every pixel (uneven light, shadows,
 * vignetting, a grey or tinted sheet), so that ink can be measured as a fraction of its own local
 * paper — `darkness = 1 − image / background`. The background comes from a coarse grid of blocks
 * (about 8 along the longer side, at least 8 px each): the paper is whatever most of each block is.
 */
import type { GrayImage } from './grayscale.ts';

const BLOCKS_ALONG_LONG_SIDE = 8;
const MIN_BLOCK = 8;
const BINS = 256;
/** A block's paper level is this percentile of its pixels: right as long as ≥ 15% of the block is paper. */
const PAPER_PERCENTILE = 0.85;

/** Per-block percentiles of an image. */
interface BlockGrid {
  cols: number;
  rows: number;
  size: number;
  /** percentile(p) of block (bx, by) at [by·cols + bx]. */
  percentile(p: number): Float32Array;
}

function blockGrid(image: GrayImage): BlockGrid {
  const { width, height, data } = image;
  const size = Math.max(MIN_BLOCK, Math.ceil(Math.max(width, height) / BLOCKS_ALONG_LONG_SIDE));
  const cols = Math.ceil(width / size);
  const rows = Math.ceil(height / size);
  const histograms = new Uint32Array(cols * rows * BINS);
  const counts = new Uint32Array(cols * rows);
  for (let y = 0; y < height; y++) {
    const blockRow = Math.floor(y / size) * cols;
    for (let x = 0; x < width; x++) {
      const block = blockRow + ((x / size) | 0);
      const bin = Math.min(BINS - 1, Math.max(0, ((data[y * width + x] as number) * BINS) | 0));
      const k = block * BINS + bin;
      histograms[k] = (histograms[k] as number) + 1;
      counts[block] = (counts[block] as number) + 1;
    }
  }
  return {
    cols,
    rows,
    size,
    percentile(p) {
      const out = new Float32Array(cols * rows);
      for (let b = 0; b < cols * rows; b++) {
        const target = p * (counts[b] as number);
        let seen = 0;
        let bin = 0;
        while (bin < BINS - 1 && seen + (histograms[b * BINS + bin] as number) <= target)
          seen += histograms[b * BINS + bin++] as number;
        out[b] = (bin + 0.5) / BINS;
      }
      return out;
    },
  };
}

/** 3×3 grey-level closing (max then min) of the block grid: fills blocks that a thick stroke covers. */
function closeGrid(values: Float32Array, cols: number, rows: number): Float32Array {
  const filter = (src: Float32Array, pick: (a: number, b: number) => number) => {
    const out = new Float32Array(src.length);
    for (let by = 0; by < rows; by++)
      for (let bx = 0; bx < cols; bx++) {
        let v = src[by * cols + bx] as number;
        for (let dy = -1; dy <= 1; dy++)
          for (let dx = -1; dx <= 1; dx++) {
            const [x, y] = [bx + dx, by + dy];
            if (x >= 0 && y >= 0 && x < cols && y < rows) v = pick(v, src[y * cols + x] as number);
          }
        out[by * cols + bx] = v;
      }
    return out;
  };
  return filter(filter(values, Math.max), Math.min);
}

/** The paper's typical level of a dark-ink image (the median block's), as inkDarkness reports it. */
export function paperLevel(image: GrayImage): number {
  const grid = blockGrid(image);
  const paper = closeGrid(grid.percentile(PAPER_PERCENTILE), grid.cols, grid.rows);
  return [...paper].sort((a, b) => a - b)[paper.length >> 1] as number;
}

/**
 * Ink darkness in [0, 1] of a dark-ink-on-light-paper image: 1 − image / background, where the
 * background is each block's paper level, closed, and interpolated bilinearly between block centres
 * — and, given a radius wider than half a stroke, no brighter than the image's grey-level closing at
 * that radius, which follows a shadow's sharp edge where the blocks cannot; and the paper's typical
 * level (the median block's).
 */
export function inkDarkness(image: GrayImage, radius = 0): { darkness: Float32Array; paper: number } {
  const { width, height, data } = image;
  const closed = radius > 0 ? closing(image, radius) : undefined;
  const grid = blockGrid(image);
  const { cols, rows, size } = grid;
  const paper = closeGrid(grid.percentile(PAPER_PERCENTILE), cols, rows);
  // Bilinear weights between block centres, clamped at the edges: per column once, per row once.
  const lerp = (n: number, blocks: number) => {
    const index = new Int32Array(n);
    const weight = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const g = Math.min(blocks - 1, Math.max(0, (i + 0.5) / size - 0.5));
      index[i] = Math.min(Math.max(0, blocks - 2), Math.floor(g));
      weight[i] = blocks > 1 ? g - (index[i] as number) : 0;
    }
    return { index, weight };
  };
  const across = lerp(width, cols);
  const down = lerp(height, rows);
  const rowOfPaper = new Float32Array(cols);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const [by, fy] = [down.index[y] as number, down.weight[y] as number];
    const by1 = Math.min(rows - 1, by + 1);
    for (let bx = 0; bx < cols; bx++)
      rowOfPaper[bx] = (1 - fy) * (paper[by * cols + bx] as number) + fy * (paper[by1 * cols + bx] as number);
    for (let x = 0; x < width; x++) {
      const [bx, fx] = [across.index[x] as number, across.weight[x] as number];
      const background =
        (1 - fx) * (rowOfPaper[bx] as number) + fx * (rowOfPaper[Math.min(cols - 1, bx + 1)] as number);
      const paperHere = closed ? Math.min(background, closed[y * width + x] as number) : background;
      const v = 1 - (data[y * width + x] as number) / Math.max(paperHere, 0.02);
      out[y * width + x] = Math.max(v, 0);
    }
  }
  return { darkness: out, paper: [...paper].sort((a, b) => a - b)[paper.length >> 1] as number };
}

/**
 * Running max (sign 1) or min (sign −1) over windows of 2r+1 along lines of an image, in O(1) per
 * pixel (van Herk / Gil–Werman: prefix and suffix extremes over blocks of the window's length).
 */
function runningExtreme(
  src: Float32Array,
  n: number,
  lines: number,
  step: number,
  lineStep: number,
  r: number,
  sign: number,
): Float32Array {
  const out = new Float32Array(src.length);
  const k = 2 * r + 1;
  const prefix = new Float32Array(n);
  const suffix = new Float32Array(n);
  for (let line = 0; line < lines; line++) {
    const base = line * lineStep;
    for (let i = 0; i < n; i++) {
      const v = sign * (src[base + i * step] as number);
      prefix[i] = i % k === 0 ? v : Math.max(prefix[i - 1] as number, v);
    }
    for (let i = n - 1; i >= 0; i--) {
      const v = sign * (src[base + i * step] as number);
      suffix[i] = i % k === k - 1 || i === n - 1 ? v : Math.max(suffix[i + 1] as number, v);
    }
    for (let i = 0; i < n; i++) {
      const [lo, hi] = [Math.max(0, i - r), Math.min(n - 1, i + r)];
      out[base + i * step] = sign * Math.max(suffix[lo] as number, prefix[hi] as number);
    }
  }
  return out;
}

/** Grey-level closing (max filter, then min filter) with a (2r+1)² square: dark strokes narrower than 2r vanish. */
export function closing(image: GrayImage, r: number): Float32Array {
  const { width: w, height: h } = image;
  const filter = (src: Float32Array, sign: number) =>
    runningExtreme(runningExtreme(src, w, h, 1, w, r, sign), h, w, w, 1, r, sign);
  return filter(filter(image.data, 1), -1);
}
