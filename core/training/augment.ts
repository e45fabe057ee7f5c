/**
 * Random augmentation of 28×28 digits on typed arrays: an affine map (a shift of up to ±`shift` pixels,
 * a rotation of up to ±`degrees`, a scale within 1 ± `scale`) and optionally an elastic distortion
 * (Simard et al. 2003: a random displacement per pixel, uniform in [−1, 1], smoothed by a Gaussian of
 * σ = `ELASTIC_SIGMA` and scaled by `elastic` pixels), sampled bilinearly around the centre (inverse
 * mapping, so every output pixel is defined; outside the image is background), then optionally random
 * erasing (Zhong et al. 2017, their defaults: with probability `erase`, a rectangle of 2–40% of the image,
 * aspect ratio 0.3–3.3, filled with random pixel values).
 */
import { IMAGE_SIDE, MNIST_STD } from '../contract.ts';
import type { Rng } from '../random.ts';

export interface AugmentOptions {
  shift: number;
  degrees: number;
  scale: number;
  /** Elastic distortion's α in pixels (Simard's 34 with σ 4); 0 or absent: none, and no draws for it. */
  elastic?: number;
  /** Random erasing's probability per image; 0 or absent: none, and no draws for it. */
  erase?: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { shift: 2, degrees: 10, scale: 0.1 };

/** What a run's `augment` (the affine map above), `elastic` (α) and `erase` (p) ask for; undefined: none. */
export function augmentOptions(config: {
  augment: boolean;
  elastic?: number;
  erase?: number;
}): AugmentOptions | undefined {
  const elastic = config.elastic ?? 0;
  const erase = config.erase ?? 0;
  if (!config.augment && elastic === 0 && erase === 0) return undefined;
  const affine = config.augment ? DEFAULT_AUGMENT : { shift: 0, degrees: 0, scale: 0 };
  return { ...affine, ...(elastic > 0 ? { elastic } : {}), ...(erase > 0 ? { erase } : {}) };
}

/** Random erasing's ranges (Zhong et al. 2017's defaults): area fraction, aspect ratio, tries per image. */
export const ERASE_AREA = [0.02, 0.4] as const;
export const ERASE_ASPECT = [0.3, 1 / 0.3] as const;
const ERASE_TRIES = 100;

/**
 * With probability `p`, one rectangle of `img` (its area and aspect drawn as above, placed uniformly where it
 * fits) filled with random pixel values: raw intensities uniform in [0, 1), normalized as the image is, so
 * `background` (a raw 0) is the low end.
 */
export function eraseRandomRectangle(img: Float32Array, rng: Rng, p: number, background: number): void {
  if (rng.next() >= p) return;
  for (let attempt = 0; attempt < ERASE_TRIES; attempt++) {
    const area = rng.uniform(ERASE_AREA[0], ERASE_AREA[1]) * SIDE * SIDE;
    const aspect = rng.uniform(ERASE_ASPECT[0], ERASE_ASPECT[1]);
    const height = Math.round(Math.sqrt(area * aspect));
    const width = Math.round(Math.sqrt(area / aspect));
    if (height >= SIDE || width >= SIDE) continue; // as in the paper: draw again
    const top = rng.int(SIDE - height + 1);
    const left = rng.int(SIDE - width + 1);
    for (let y = top; y < top + height; y++)
      for (let x = left; x < left + width; x++) img[y * SIDE + x] = background + rng.next() / MNIST_STD;
    return;
  }
}

const SIDE = IMAGE_SIDE;
const CENTRE = 13.5;

/** The displacement field's smoothing (Simard et al.'s σ = 4 pixels), truncated at 3σ. */
export const ELASTIC_SIGMA = 4;
const RADIUS = 3 * ELASTIC_SIGMA;
const GAUSSIAN = Float32Array.from({ length: 2 * RADIUS + 1 }, (_, i) => {
  const d = i - RADIUS;
  return Math.exp(-(d * d) / (2 * ELASTIC_SIGMA * ELASTIC_SIGMA)) / (Math.sqrt(2 * Math.PI) * ELASTIC_SIGMA);
});
// Reused per call: augmenting runs on one thread, one image at a time.
const noise = new Float32Array(SIDE * SIDE);
const rows = new Float32Array(SIDE * SIDE);
const fieldX = new Float32Array(SIDE * SIDE);
const fieldY = new Float32Array(SIDE * SIDE);

/**
 * `src` (28×28) convolved with the Gaussian above, zero outside the image (scipy's `gaussian_filter` with
 * mode 'constant'), times `gain`, into `dst`; separable, rows then columns.
 */
export function smoothField(src: Float32Array, dst: Float32Array, gain: number): void {
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      let sum = 0;
      const from = Math.max(0, x - RADIUS);
      const to = Math.min(SIDE - 1, x + RADIUS);
      for (let k = from; k <= to; k++) sum += (GAUSSIAN[k - x + RADIUS] as number) * (src[y * SIDE + k] as number);
      rows[y * SIDE + x] = sum;
    }
  }
  for (let y = 0; y < SIDE; y++) {
    const from = Math.max(0, y - RADIUS);
    const to = Math.min(SIDE - 1, y + RADIUS);
    for (let x = 0; x < SIDE; x++) {
      let sum = 0;
      for (let k = from; k <= to; k++) sum += (GAUSSIAN[k - y + RADIUS] as number) * (rows[k * SIDE + x] as number);
      dst[y * SIDE + x] = sum * gain;
    }
  }
}

/** One smoothed random displacement component, α pixels strong, into `field`. */
function elasticField(rng: Rng, alpha: number, field: Float32Array): void {
  for (let i = 0; i < noise.length; i++) noise[i] = rng.uniform(-1, 1);
  smoothField(noise, field, alpha);
}

/**
 * One source pixel, `background` outside the image. A module-level function, not a closure made per output
 * pixel: tsx (keepNames) wraps every closure in a `__name` call, which made augmenting cost 0.3 ms an image.
 */
function pixel(src: Float32Array, y: number, x: number, background: number): number {
  return y >= 0 && y < SIDE && x >= 0 && x < SIDE ? (src[y * SIDE + x] as number) : background;
}

/** One affine map (and optional displacement fields), as `augmentImage` draws it and `warpImage` applies it. */
export interface Warp {
  /** Rotation in degrees, either sign. */
  degrees: number;
  /** Scale factor (1: none). */
  scale: number;
  /** Shift in pixels, right and down. */
  shiftX: number;
  shiftY: number;
  /** Elastic displacement per output pixel (784 each), or none. */
  fields?: { x: Float32Array; y: Float32Array };
}

/** Write an augmented copy of `src` (784 normalized floats) into `dst`; `background` fills the outside. */
export function augmentImage(
  src: Float32Array,
  dst: Float32Array,
  rng: Rng,
  options: AugmentOptions,
  background: number,
): void {
  const degrees = rng.uniform(-options.degrees, options.degrees);
  const scale = 1 + rng.uniform(-options.scale, options.scale);
  const [shiftX, shiftY] = [rng.uniform(-options.shift, options.shift), rng.uniform(-options.shift, options.shift)];
  const alpha = options.elastic ?? 0;
  if (alpha > 0) {
    elasticField(rng, alpha, fieldX);
    elasticField(rng, alpha, fieldY);
  }
  warpImage(
    src,
    dst,
    { degrees, scale, shiftX, shiftY, fields: alpha > 0 ? { x: fieldX, y: fieldY } : undefined },
    background,
  );
  if (options.erase) eraseRandomRectangle(dst, rng, options.erase, background);
}

/**
 * `src` moved by `warp` into `dst`, sampled bilinearly (inverse mapping, so every output pixel is defined);
 * `background` outside the image. Deterministic: test-time augmentation applies fixed warps with it.
 */
export function warpImage(src: Float32Array, dst: Float32Array, warp: Warp, background: number): void {
  const angle = (warp.degrees * Math.PI) / 180;
  // Output pixel p maps back to source q = R(−θ)·(p − c − t)/s + c.
  const cos = Math.cos(angle) / warp.scale;
  const sin = Math.sin(angle) / warp.scale;
  const fields = warp.fields;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const dx = x - CENTRE - warp.shiftX;
      const dy = y - CENTRE - warp.shiftY;
      // The distortion displaces where each output pixel reads from, after the affine map.
      const ex = fields ? (fields.x[y * SIDE + x] as number) : 0;
      const ey = fields ? (fields.y[y * SIDE + x] as number) : 0;
      const sx = cos * dx + sin * dy + CENTRE + ex;
      const sy = -sin * dx + cos * dy + CENTRE + ey;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      dst[y * SIDE + x] =
        (1 - fy) * ((1 - fx) * pixel(src, y0, x0, background) + fx * pixel(src, y0, x0 + 1, background)) +
        fy * ((1 - fx) * pixel(src, y0 + 1, x0, background) + fx * pixel(src, y0 + 1, x0 + 1, background));
    }
  }
}
