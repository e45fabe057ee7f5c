/**
 * Random affine augmentation of 28×28 digits on typed arrays: a shift of up to ±`shift` pixels,
 * a rotation of up to ±`degrees`, a scale within 1 ± `scale`, sampled bilinearly around the centre
 * (inverse mapping, so every output pixel is defined; outside the image is background).
 */
import { IMAGE_SIDE } from '../contract.ts';
import type { Rng } from '../random.ts';

export interface AugmentOptions {
  shift: number;
  degrees: number;
  scale: number;
}

export const DEFAULT_AUGMENT: AugmentOptions = { shift: 2, degrees: 10, scale: 0.1 };

const SIDE = IMAGE_SIDE;
const CENTRE = 13.5;

/**
 * One source pixel, `background` outside the image. A module-level function, not a closure made per output
 * pixel: tsx (keepNames) wraps every closure in a `__name` call, which made augmenting cost 0.3 ms an image.
 */
function pixel(src: Float32Array, y: number, x: number, background: number): number {
  return y >= 0 && y < SIDE && x >= 0 && x < SIDE ? (src[y * SIDE + x] as number) : background;
}

/** Write an augmented copy of `src` (784 normalized floats) into `dst`; `background` fills the outside. */
export function augmentImage(
  src: Float32Array,
  dst: Float32Array,
  rng: Rng,
  options: AugmentOptions,
  background: number,
): void {
  const angle = (rng.uniform(-options.degrees, options.degrees) * Math.PI) / 180;
  const s = 1 + rng.uniform(-options.scale, options.scale);
  const [tx, ty] = [rng.uniform(-options.shift, options.shift), rng.uniform(-options.shift, options.shift)];
  // Output pixel p maps back to source q = R(−θ)·(p − c − t)/s + c.
  const cos = Math.cos(angle) / s;
  const sin = Math.sin(angle) / s;
  for (let y = 0; y < SIDE; y++) {
    for (let x = 0; x < SIDE; x++) {
      const dx = x - CENTRE - tx;
      const dy = y - CENTRE - ty;
      const sx = cos * dx + sin * dy + CENTRE;
      const sy = -sin * dx + cos * dy + CENTRE;
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
