/**
 * MNIST's own preprocessing for any drawing or photo of a digit — shared by the server and the web
 * demo, so both feed models the same 28×28 image:
 *  1. grayscale, ink made white on black (a light background is inverted);
 *  2. the ink's bounding box scaled (area-averaged, keeping the aspect ratio) so its longer side is 20 px;
 *  3. placed in a 28×28 frame with its centre of mass at the centre;
 * giving intensities in [0, 1]. Pure TypeScript on typed arrays: no DOM, no Node APIs.
 */

export const SIDE = 28;
const BOX = 20;

/** A grayscale image, intensities in [0, 1], row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array;
}

/** Luminance of RGBA pixels composited over white (transparent canvas areas count as paper). */
export function grayscaleFromRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): GrayImage {
  const data = new Float32Array(width * height);
  for (let i = 0; i < data.length; i++) {
    const a = (rgba[i * 4 + 3] as number) / 255;
    const luminance =
      (0.299 * (rgba[i * 4] as number) + 0.587 * (rgba[i * 4 + 1] as number) + 0.114 * (rgba[i * 4 + 2] as number)) /
      255;
    data[i] = a * luminance + (1 - a);
  }
  return { width, height, data };
}

/** Make ink bright on a dark background: invert when the image's border is mostly light. */
export function inkWhiteOnBlack(image: GrayImage): GrayImage {
  const { width, height, data } = image;
  let sum = 0;
  let count = 0;
  for (let x = 0; x < width; x++) {
    sum += (data[x] as number) + (data[(height - 1) * width + x] as number);
    count += 2;
  }
  for (let y = 0; y < height; y++) {
    sum += (data[y * width] as number) + (data[y * width + width - 1] as number);
    count += 2;
  }
  if (sum / count <= 0.5) return image;
  return { width, height, data: data.map((v) => 1 - v) };
}

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

export class BlankImageError extends Error {
  override name = 'BlankImageError';
}

/**
 * A white-on-black grayscale image → the 784 intensities a model takes.
 * Throws BlankImageError when there is no ink.
 */
export function toMnistInput(image: GrayImage, inkThreshold = 0.02): Float32Array {
  const { width, height, data } = image;
  let max = 0;
  for (const v of data) max = Math.max(max, v);
  let [minX, minY, maxX, maxY] = [width, height, -1, -1];
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      if (
        (data[y * width + x] as number) > inkThreshold * Math.max(max, 1e-6) &&
        (data[y * width + x] as number) > 0.02
      ) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
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
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const v = digit[y * outW + x] as number;
      mass += v;
      cx += v * x;
      cy += v * y;
    }
  }
  const offsetX = Math.round(SIDE / 2 - cx / mass);
  const offsetY = Math.round(SIDE / 2 - cy / mass);
  const out = new Float32Array(SIDE * SIDE);
  for (let y = 0; y < outH; y++) {
    const ty = y + offsetY;
    if (ty < 0 || ty >= SIDE) continue;
    for (let x = 0; x < outW; x++) {
      const tx = x + offsetX;
      if (tx >= 0 && tx < SIDE) out[ty * SIDE + tx] = Math.min(1, Math.max(0, digit[y * outW + x] as number));
    }
  }
  return out;
}

/** RGBA pixels (a canvas, a decoded PNG/JPEG) → model input, whatever the ink colour. */
export function preprocessRgba(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Float32Array {
  return toMnistInput(inkWhiteOnBlack(grayscaleFromRgba(rgba, width, height)));
}
