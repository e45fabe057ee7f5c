/**
 * The paper and its light: how bright the bare paper would be at every pixel (uneven light, shadows,
 * vignetting, a grey or tinted sheet), so that ink can be measured as a fraction of its own local
 * paper — `darkness = 1 − image / background`. The background comes from a coarse grid of blocks
 * (about 8 along the longer side, at least 8 px each): the paper is whatever most of each block is.
 */
import type { GrayImage } from './grayscale.ts';
import { closing } from './morphology.ts';

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
  /** percentile(p) of block (bx, by) at [by·cols + bx]; of the inverted image (1 − v) when `inverted`. */
  percentile(p: number, inverted?: boolean): Float32Array;
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
    percentile(p, inverted = false) {
      const out = new Float32Array(cols * rows);
      // 1 − v falls in bin BINS − 1 − bin(v) (but at exact bin edges: immaterial for a percentile).
      const at = (b: number, bin: number) => histograms[b * BINS + (inverted ? BINS - 1 - bin : bin)] as number;
      for (let b = 0; b < cols * rows; b++) {
        const target = p * (counts[b] as number);
        let seen = 0;
        let bin = 0;
        while (bin < BINS - 1 && seen + at(b, bin) <= target) seen += at(b, bin++);
        out[b] = (bin + 0.5) / BINS;
      }
      return out;
    },
  };
}

/** 3×3 grey-level closing (max then min) of the block grid: fills blocks that a thick stroke covers. */
const closeGrid = (values: Float32Array, cols: number, rows: number): Float32Array =>
  closing({ width: cols, height: rows, data: values }, 1);

/** The paper's level per block of a dark-ink image, closed, and its typical level (the median block's). */
export interface PaperGrid {
  cols: number;
  rows: number;
  /** Block side in pixels. */
  size: number;
  /** Block (bx, by)'s paper level at [by·cols + bx]. */
  paper: Float32Array;
  /** The median block's paper level. */
  level: number;
}

/** The paper grid of a dark-ink image: computed once, shared by every reading of the same image. */
export function paperGrid(image: GrayImage): PaperGrid {
  return paperGrids(image).dark;
}

/** The paper grids of an image read both ways round — dark ink, and light ink (the image inverted) — from one pass. */
export function paperGrids(image: GrayImage): { dark: PaperGrid; light: PaperGrid } {
  const { cols, rows, size, percentile } = blockGrid(image);
  const grid = (inverted: boolean) => {
    const paper = closeGrid(percentile(PAPER_PERCENTILE, inverted), cols, rows);
    const level = Float32Array.from(paper).sort()[paper.length >> 1] as number;
    return { cols, rows, size, paper, level };
  };
  return { dark: grid(false), light: grid(true) };
}

/** A rectangle of pixels, bounds included. */
export interface Region {
  minX: number;
  minY: number;
  maxX: number;
  maxY: number;
}

/** The closing of the part of an image inside `box`, row-major over the box. */
function closingIn(image: GrayImage, r: number, box: Region): Float32Array {
  const { width, data } = image;
  const w = box.maxX - box.minX + 1;
  const h = box.maxY - box.minY + 1;
  if (w === width && h === image.height) return closing(image, r);
  const crop = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const from = (box.minY + y) * width + box.minX;
    crop.set(data.subarray(from, from + w), y * w);
  }
  return closing({ width: w, height: h, data: crop }, r);
}

/** How inkDarkness reads an image beyond the blocks' paper. */
export interface DarknessOptions {
  /** The image's paperGrid, when already known. */
  grid?: PaperGrid;
  /** The closing's radius: wider than half a stroke (0: no closing). */
  radius?: number;
  /** Where the closing applies (the whole image by default). */
  region?: Region;
  /** The image's darkness without a closing, when already known: only `region` is computed again. */
  plain?: Float32Array;
}

/**
 * Ink darkness in [0, 1] of a dark-ink-on-light-paper image: 1 − image / background, where the
 * background is each block's paper level, closed, and interpolated bilinearly between block centres
 * — and, given a radius wider than half a stroke, no brighter than the image's grey-level closing at
 * that radius, which follows a shadow's sharp edge where the blocks cannot; and the paper's typical
 * level (the median block's). The closing costs more than the rest together and only matters around
 * the digit: it can be limited to a region, the rest taken from the plain reading. `shadowed` counts
 * the pixels where the closing lowered the paper (0: the same darkness as without it).
 */
export function inkDarkness(
  image: GrayImage,
  options: DarknessOptions = {},
): { darkness: Float32Array; paper: number; shadowed: number } {
  const { width, height, data } = image;
  const { radius = 0, grid = paperGrid(image), plain } = options;
  const box = options.region ?? { minX: 0, minY: 0, maxX: width - 1, maxY: height - 1 };
  const closed = radius > 0 ? closingIn(image, radius, box) : undefined;
  const closedWidth = box.maxX - box.minX + 1;
  const { cols, rows, size, paper } = grid;
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
  const out = plain && closed ? Float32Array.from(plain) : new Float32Array(width * height);
  // With the plain reading known, only the closing's region changes.
  const [x0, x1, y0, y1] = plain && closed ? [box.minX, box.maxX, box.minY, box.maxY] : [0, width - 1, 0, height - 1];
  let shadowed = 0;
  for (let y = y0; y <= y1; y++) {
    const [by, fy] = [down.index[y] as number, down.weight[y] as number];
    const by1 = Math.min(rows - 1, by + 1);
    for (let bx = 0; bx < cols; bx++)
      rowOfPaper[bx] = (1 - fy) * (paper[by * cols + bx] as number) + fy * (paper[by1 * cols + bx] as number);
    const inRows = y >= box.minY && y <= box.maxY;
    for (let x = x0; x <= x1; x++) {
      const [bx, fx] = [across.index[x] as number, across.weight[x] as number];
      const background =
        (1 - fx) * (rowOfPaper[bx] as number) + fx * (rowOfPaper[Math.min(cols - 1, bx + 1)] as number);
      let paperHere = background;
      if (closed && inRows && x >= box.minX && x <= box.maxX) {
        const shadow = closed[(y - box.minY) * closedWidth + (x - box.minX)] as number;
        if (shadow < background) [paperHere, shadowed] = [shadow, shadowed + 1];
      }
      const v = 1 - (data[y * width + x] as number) / Math.max(paperHere, 0.02);
      out[y * width + x] = Math.max(v, 0);
    }
  }
  return { darkness: out, paper: grid.level, shadowed };
}
