/**
 * RGBA → grayscale, downsampled early: a phone photo has millions of pixels but a digit needs a few
 * hundred, and every later step is linear in the pixel count, so big pictures are box-averaged by an
 * integer factor to at most WORKING_SIDE on their longer side in the same pass (anti-aliased, one read).
 */

/** A grayscale image, intensities in [0, 1] (1 = white), row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** The longest side the preprocessing works at: a digit a fifth of a 4:3 frame high keeps ≥ 30 px. */
export const WORKING_SIDE = 224;

/** How many multiples of `step` lie in [start, start + length). */
const samples = (start: number, length: number, step: number) =>
  Math.floor((start + length - 1) / step) - Math.ceil(start / step) + 1;

/**
 * Luminance (Rec. 601) of RGBA pixels composited over white — transparent canvas areas count as
 * paper — averaged over `factor`×`factor` blocks; the factor is the smallest integer that brings the
 * longer side to at most `maxSide`.
 */
export function grayscaleFromRgba(
  rgba: Uint8Array | Uint8ClampedArray,
  width: number,
  height: number,
  maxSide = WORKING_SIDE,
): GrayImage {
  const factor = Math.max(1, Math.ceil(Math.max(width, height) / maxSide));
  const outW = Math.ceil(width / factor);
  const outH = Math.ceil(height / factor);
  // Big factors average every other pixel of every other row: (factor/2)² samples a block, a quarter of the reads.
  const step = factor >= 4 ? 2 : 1;
  const sums = new Float64Array(outW * outH);
  for (let y = 0; y < height; y += step) {
    const row = Math.floor(y / factor) * outW;
    // One block's run of a row at a time: no division per pixel.
    for (let ox = 0, x = 0; ox < outW; ox++) {
      const end = Math.min(width, (ox + 1) * factor);
      let acc = 0;
      for (let i = (y * width + x) * 4; x < end; x += step, i += 4 * step) {
        const a = rgba[i + 3] as number;
        const luminance =
          0.299 * (rgba[i] as number) + 0.587 * (rgba[i + 1] as number) + 0.114 * (rgba[i + 2] as number);
        // Over white: a·L + (255 − a)·255, in units of 255².
        acc += a * luminance + (255 - a) * 255;
      }
      sums[row + ox] = (sums[row + ox] as number) + acc;
    }
  }
  const data = new Float32Array(outW * outH);
  for (let oy = 0; oy < outH; oy++) {
    const rows = samples(oy * factor, Math.min(factor, height - oy * factor), step);
    for (let ox = 0; ox < outW; ox++) {
      const cols = samples(ox * factor, Math.min(factor, width - ox * factor), step);
      data[oy * outW + ox] = (sums[oy * outW + ox] as number) / (rows * cols * 255 * 255);
    }
  }
  return { width: outW, height: outH, data };
}
