/**
 * The shared grey-level morphology (core/digits/morphology.ts: van Herk's O(1) running max) against the
 * definition, a brute-force max over every clipped window, on odd sizes where windows are clipped at
 * both edges and the image is narrower than one window.
 */
import { describe, expect, it } from 'vitest';
import { closing, maxFilter, morph } from '../core/digits/morphology.ts';
import { Rng } from '../core/random.ts';

/** max (sign 1) or min (sign -1) over the (2r+1)² window clipped to the image, by definition. */
function bruteForce(data: Float32Array, w: number, h: number, r: number, sign: 1 | -1): Float32Array {
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let m = -Infinity;
      for (let yy = Math.max(0, y - r); yy <= Math.min(h - 1, y + r); yy++)
        for (let xx = Math.max(0, x - r); xx <= Math.min(w - 1, x + r); xx++)
          m = Math.max(m, sign * (data[yy * w + xx] as number));
      out[y * w + x] = sign * m;
    }
  return out;
}

const SIZES: [number, number][] = [
  [1, 1],
  [5, 1],
  [1, 7],
  [5, 7],
  [30, 20],
  [29, 64],
];

describe('grey-level morphology', () => {
  const rng = new Rng(7);
  const image = (w: number, h: number) => Float32Array.from({ length: w * h }, () => rng.next());

  it('max filter, dilation and erosion equal the brute-force window max and min, edges included', () => {
    for (const [w, h] of SIZES)
      for (const r of [1, 2, 3, 7]) {
        const data = image(w, h);
        expect(Array.from(maxFilter(data, w, h, r))).toEqual(Array.from(bruteForce(data, w, h, r, 1)));
        expect(Array.from(morph({ width: w, height: h, data }, r).data)).toEqual(
          Array.from(bruteForce(data, w, h, r, 1)),
        );
        expect(Array.from(morph({ width: w, height: h, data }, -r).data)).toEqual(
          Array.from(bruteForce(data, w, h, r, -1)),
        );
      }
  });

  it('closing is the erosion of the dilation; fractional radii round to whole pixels', () => {
    for (const [w, h] of SIZES) {
      const data = image(w, h);
      const dilated = bruteForce(data, w, h, 2, 1);
      expect(Array.from(closing({ width: w, height: h, data }, 2))).toEqual(
        Array.from(bruteForce(dilated, w, h, 2, -1)),
      );
      const fractional = morph({ width: w, height: h, data }, -2.4).data;
      expect(fractional.every(Number.isFinite)).toBe(true);
      expect(Array.from(fractional)).toEqual(Array.from(bruteForce(data, w, h, 2, -1)));
    }
  });
});
