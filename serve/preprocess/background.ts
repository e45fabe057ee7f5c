/**
 * The paper and its light: which way round the ink is, and how bright the bare paper would be at
 * every pixel (uneven light, shadows, vignetting, a grey or tinted sheet), so that ink can be measured
 * as a fraction of its own local paper — `darkness = 1 − image / background`.
 *
 * Both come from a coarse grid of blocks (about 8 along the longer side, at least 8 px each): the
 * paper is whatever most of each block is.
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

/**
 * Whether the ink is lighter than its background (chalk on a board, white on black), decided from the
 * data by two cues that do not depend on the light:
 *  - the border: a picture's edges are mostly background — where does the border's median sit between
 *    the picture's darkest and lightest tones?
 *  - the minority: within each block, ink is the minority, so the block's median sits near the
 *    background's end of its range (weighted by the block's contrast; blank blocks say nothing).
 */
export function inkIsLight(image: GrayImage): boolean {
  const { width, height, data } = image;
  const grid = blockGrid(image);
  const [low, mid, high] = [grid.percentile(0.05), grid.percentile(0.5), grid.percentile(0.95)];
  let skew = 0;
  let range = 0;
  for (let b = 0; b < low.length; b++) {
    skew += (mid[b] as number) - (low[b] as number) - ((high[b] as number) - (mid[b] as number));
    range += (high[b] as number) - (low[b] as number);
  }
  const minority = range > 0 ? skew / range : 0; // > 0: dark ink is the minority
  const border: number[] = [];
  for (let x = 0; x < width; x++) border.push(data[x] as number, data[(height - 1) * width + x] as number);
  for (let y = 1; y < height - 1; y++) border.push(data[y * width] as number, data[y * width + width - 1] as number);
  border.sort((a, b) => a - b);
  const borderMedian = border[border.length >> 1] as number;
  let [darkest, lightest] = [1, 0];
  for (let b = 0; b < low.length; b++) {
    darkest = Math.min(darkest, low[b] as number);
    lightest = Math.max(lightest, high[b] as number);
  }
  const borderCue = lightest > darkest ? (2 * (borderMedian - darkest)) / (lightest - darkest) - 1 : 0; // > 0: light border
  return borderCue + minority < 0;
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

/**
 * Ink darkness in [0, 1] of a dark-ink-on-light-paper image: 1 − image / background, where the
 * background is each block's paper level, closed, and interpolated bilinearly between block centres.
 */
export function inkDarkness(image: GrayImage): Float32Array {
  const { width, height, data } = image;
  const grid = blockGrid(image);
  const { cols, rows, size } = grid;
  const paper = closeGrid(grid.percentile(PAPER_PERCENTILE), cols, rows);
  const out = new Float32Array(width * height);
  for (let y = 0; y < height; y++) {
    const gy = Math.min(rows - 1, Math.max(0, (y + 0.5) / size - 0.5));
    const y0 = Math.min(rows - 2, Math.floor(gy));
    const fy = rows > 1 ? gy - Math.max(0, y0) : 0;
    for (let x = 0; x < width; x++) {
      const gx = Math.min(cols - 1, Math.max(0, (x + 0.5) / size - 0.5));
      const x0 = Math.min(cols - 2, Math.floor(gx));
      const fx = cols > 1 ? gx - Math.max(0, x0) : 0;
      const at = (bx: number, by: number) =>
        paper[Math.min(rows - 1, Math.max(0, by)) * cols + Math.min(cols - 1, Math.max(0, bx))] as number;
      const [ix, iy] = [Math.max(0, x0), Math.max(0, y0)];
      const background =
        (1 - fy) * ((1 - fx) * at(ix, iy) + fx * at(ix + 1, iy)) +
        fy * ((1 - fx) * at(ix, iy + 1) + fx * at(ix + 1, iy + 1));
      out[y * width + x] = Math.max(0, 1 - (data[y * width + x] as number) / Math.max(background, 0.02));
    }
  }
  return out;
}
