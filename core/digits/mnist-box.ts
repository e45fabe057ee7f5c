/**
 * MNIST's own last steps (LeCun et al.): the ink's bounding box scaled, keeping its aspect ratio, so
 * the longer side is 20 px (area-averaged: anti-aliased), then placed in a 28×28 frame with its centre
 * of mass at the centre.
 */
import { IMAGE_PIXELS, IMAGE_SIDE } from '../contract.ts';
import { BlankImageError } from './blank.ts';
import type { GrayImage } from './grayscale.ts';

/** The box MNIST fits each digit's longer side into. */
const BOX = 20;

/** Area-averaging resample of a region to `outW × outH` (anti-aliased downscaling, exact upscaling). */
function resampleArea(
  src: GrayImage,
  x0: number,
  y0: number,
  w: number,
  h: number,
  outW: number,
  outH: number,
): Float32Array {
  const out = new Float32Array(outW * outH);
  const sx = w / outW;
  const sy = h / outH;
  for (let oy = 0; oy < outH; oy++) {
    const top = y0 + oy * sy;
    const bottom = top + sy;
    for (let ox = 0; ox < outW; ox++) {
      const left = x0 + ox * sx;
      const right = left + sx;
      let acc = 0;
      for (let y = Math.floor(top); y < Math.ceil(bottom); y++) {
        const wy = Math.min(bottom, y + 1) - Math.max(top, y);
        for (let x = Math.floor(left); x < Math.ceil(right); x++) {
          const wx = Math.min(right, x + 1) - Math.max(left, x);
          acc += wx * wy * (src.data[y * src.width + x] as number);
        }
      }
      out[oy * outW + ox] = acc / (sx * sy);
    }
  }
  return out;
}

/**
 * An ink image (white ink on black, [0, 1], nothing but the digit) → the 784 intensities a model takes.
 * Throws BlankImageError when there is no ink.
 */
export function toMnistInput(image: GrayImage): Float32Array {
  const { width, height, data } = image;
  let [minX, minY, maxX, maxY] = [width, height, -1, -1];
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      if ((data[y * width + x] as number) > 0) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
  if (maxX < 0) throw new BlankImageError('the image has no ink (it is blank)');
  const w = maxX - minX + 1;
  const h = maxY - minY + 1;
  const scale = BOX / Math.max(w, h);
  const outW = Math.max(1, Math.round(w * scale));
  const outH = Math.max(1, Math.round(h * scale));
  const digit = resampleArea(image, minX, minY, w, h, outW, outH);

  // Centre of mass of the scaled digit (pixel-index coordinates) moved to pixel (14, 14), as MNIST's
  // own digits sit (checked against the test set: a half-pixel convention off shifts them all by one).
  let [mass, cx, cy] = [0, 0, 0];
  for (let y = 0; y < outH; y++)
    for (let x = 0; x < outW; x++) {
      const v = digit[y * outW + x] as number;
      mass += v;
      cx += v * x;
      cy += v * y;
    }
  const offsetX = Math.round(IMAGE_SIDE / 2 - cx / mass);
  const offsetY = Math.round(IMAGE_SIDE / 2 - cy / mass);
  const out = new Float32Array(IMAGE_PIXELS);
  for (let y = 0; y < outH; y++) {
    const ty = y + offsetY;
    if (ty < 0 || ty >= IMAGE_SIDE) continue;
    for (let x = 0; x < outW; x++) {
      const tx = x + offsetX;
      if (tx >= 0 && tx < IMAGE_SIDE)
        out[ty * IMAGE_SIDE + tx] = Math.min(1, Math.max(0, digit[y * outW + x] as number));
    }
  }
  return out;
}
