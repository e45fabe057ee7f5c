/**
 * Stroke width as the preprocessing measures it: exact on drawn bars of known width (geometry), and
 * MNIST's percentiles in core/digits/stroke.ts match MNIST itself (re-measured here).
 */
import { describe, expect, it } from 'vitest';
import { IMAGE_PIXELS, IMAGE_SIDE } from '../core/contract.ts';
import { MNIST_STROKE, strokeWidth } from '../core/digits/stroke.ts';
import { loadMnist } from '../node/mnist.ts';

/** A w×h solid bar with its top-left corner at (4, 4). */
function bar(w: number, h: number): Float32Array {
  const image = new Float32Array(IMAGE_PIXELS);
  for (let y = 4; y < 4 + h; y++) for (let x = 4; x < 4 + w; x++) image[y * IMAGE_SIDE + x] = 1;
  return image;
}

describe('stroke width', () => {
  it('measures bars of width 1 to 5 within 0.5 px', () => {
    for (const w of [1, 2, 3, 4, 5]) expect(Math.abs(strokeWidth(bar(w, 18)) - w)).toBeLessThan(0.5);
    expect(strokeWidth(new Float32Array(IMAGE_PIXELS))).toBe(0);
  });

  it("holds MNIST's own percentiles (first 10,000 training digits)", async () => {
    const train = await loadMnist('train');
    const widths: number[] = [];
    for (let i = 0; i < 10_000; i++)
      widths.push(
        strokeWidth(Float32Array.from(train.images.subarray(i * IMAGE_PIXELS, (i + 1) * IMAGE_PIXELS), (v) => v / 255)),
      );
    widths.sort((a, b) => a - b);
    const at = (q: number) => widths[Math.floor(q * widths.length)] as number;
    expect(at(0.01)).toBeCloseTo(MNIST_STROKE.p1, 1);
    expect(at(0.1)).toBeCloseTo(MNIST_STROKE.p10, 1);
    expect(at(0.5)).toBeCloseTo(MNIST_STROKE.median, 1);
    expect(at(0.9)).toBeCloseTo(MNIST_STROKE.p90, 1);
    expect(at(0.99)).toBeCloseTo(MNIST_STROKE.p99, 1);
  });
});
