/**
 * Grey-level morphology with square windows, the one implementation the preprocessing, its stroke
 * correction and the photo generator share: separable running max in O(1) per pixel (van Herk /
 * Gil–Werman: prefix and suffix maxima over blocks of the window's length); a min filter is the max
 * filter of the negated image. Windows are clipped at the image's edges.
 */
import type { GrayImage } from './grayscale.ts';

/**
 * Max over the window [top, bottom] (clipped at the edges; `k` = the unclipped window's length, the
 * block length) from the blocks' suffix and prefix maxima, at column `x` of rows `stride` apart.
 * An unclipped window spans two blocks, or exactly one; a clipped one may sit inside one block,
 * where the block's own prefix or suffix would reach past it.
 */
function windowMax(
  top: number,
  bottom: number,
  k: number,
  suffix: Float32Array,
  prefix: Float32Array,
  x: number,
  stride = 1,
): number {
  if (top < 0) return prefix[bottom * stride + x] as number; // clipped at the start: inside the first block
  if (Math.floor(top / k) === Math.floor(bottom / k)) return suffix[top * stride + x] as number; // ends at the block's end
  return Math.max(suffix[top * stride + x] as number, prefix[bottom * stride + x] as number);
}

/**
 * Running max over windows of 2r+1 along each row, in O(1) per pixel (van Herk / Gil–Werman: prefix
 * and suffix maxima over blocks of the window's length), into `out`; `prefix` and `suffix` are scratch.
 */
function rowMax(src: Float32Array, out: Float32Array, w: number, h: number, r: number, scratch: Float32Array[]): void {
  const k = 2 * r + 1;
  const [prefix, suffix] = scratch as [Float32Array, Float32Array];
  for (let base = 0; base < w * h; base += w) {
    for (let start = 0; start < w; start += k) {
      const end = Math.min(w, start + k);
      let m = -Infinity;
      for (let i = start; i < end; i++) {
        const v = src[base + i] as number;
        if (v > m) m = v;
        prefix[i] = m;
      }
      m = -Infinity;
      for (let i = end - 1; i >= start; i--) {
        const v = src[base + i] as number;
        if (v > m) m = v;
        suffix[i] = m;
      }
    }
    for (let i = 0; i < w; i++) {
      const [top, bottom] = [i - r, Math.min(i + r, w - 1)];
      out[base + i] = windowMax(top, bottom, k, suffix, prefix, 0);
    }
  }
}

/** rowMax down the columns, a whole row at a time (cache-friendly): `prefix`, `suffix` are w·h scratch. */
function columnMax(
  src: Float32Array,
  out: Float32Array,
  w: number,
  h: number,
  r: number,
  scratch: Float32Array[],
): void {
  const k = 2 * r + 1;
  const [prefix, suffix] = scratch as [Float32Array, Float32Array];
  for (let start = 0; start < h; start += k) {
    const end = Math.min(h, start + k);
    prefix.set(src.subarray(start * w, (start + 1) * w), start * w);
    for (let i = (start + 1) * w; i < end * w; i++) {
      const v = src[i] as number;
      const p = prefix[i - w] as number;
      prefix[i] = Math.max(v, p);
    }
    suffix.set(src.subarray((end - 1) * w, end * w), (end - 1) * w);
    for (let i = (end - 1) * w - 1; i >= start * w; i--) {
      const v = src[i] as number;
      const s = suffix[i + w] as number;
      suffix[i] = Math.max(v, s);
    }
  }
  for (let y = 0; y < h; y++) {
    const [top, bottom] = [y - r, Math.min(y + r, h - 1)];
    for (let x = 0, o = y * w; x < w; x++, o++) out[o] = windowMax(top, bottom, k, suffix, prefix, x, w);
  }
}

/** Max filter with a (2r+1)² square (r rounded to whole pixels) of a w×h map, into a new array. */
export function maxFilter(data: Float32Array, w: number, h: number, radius: number): Float32Array {
  const r = Math.round(Math.abs(radius));
  if (r === 0) return data.slice();
  const scratch = [new Float32Array(w * h), new Float32Array(w * h)];
  const a = new Float32Array(w * h);
  const out = new Float32Array(w * h);
  rowMax(data, a, w, h, r, scratch);
  columnMax(a, out, w, h, r, scratch);
  return out;
}

const negated = (data: Float32Array) => data.map((v) => -v);

/** Grey-level dilation (radius > 0) or erosion (radius < 0) with a square of side 2|radius|+1. */
export function morph(image: GrayImage, radius: number): GrayImage {
  const { width, height, data } = image;
  if (Math.round(Math.abs(radius)) === 0) return image;
  const out =
    radius > 0 ? maxFilter(data, width, height, radius) : negated(maxFilter(negated(data), width, height, radius));
  return { width, height, data: out };
}

/** Grey-level closing (max filter, then min filter) with a (2r+1)² square: dark strokes narrower than 2r vanish. */
export function closing(image: GrayImage, r: number): Float32Array {
  const { width: w, height: h, data } = image;
  const scratch = [new Float32Array(w * h), new Float32Array(w * h)];
  const [a, b] = [new Float32Array(w * h), new Float32Array(w * h)];
  rowMax(data, a, w, h, r, scratch);
  columnMax(a, b, w, h, r, scratch);
  // The min filter as the max filter of the negated image.
  for (let i = 0; i < b.length; i++) b[i] = -(b[i] as number);
  rowMax(b, a, w, h, r, scratch);
  columnMax(a, b, w, h, r, scratch);
  for (let i = 0; i < b.length; i++) b[i] = -(b[i] as number);
  return b;
}
