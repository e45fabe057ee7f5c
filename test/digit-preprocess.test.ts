/**
 * The shared digit preprocessing against MNIST itself: MNIST digits were made by this very procedure
 * (20×20 box, centre of mass at the centre), so a test digit drawn large, dark on white and off-centre
 * must come back close to the original.
 */
import { describe, expect, it } from 'vitest';
import { BlankImageError, preprocessRgba, SIDE } from '../core/digits/digit.ts';
import { loadMnist } from '../node/mnist.ts';

const test = await loadMnist('test');
const original = (i: number) => Float32Array.from(test.images.subarray(i * 784, (i + 1) * 784), (v) => v / 255);

/** Draw MNIST digit i on paper: `scale`× larger, dark ink on white, at (left, top) of a w×h canvas. */
function onPaper(i: number, scale: number, left: number, top: number, w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4).fill(255);
  const img = original(i);
  for (let y = 0; y < 28 * scale; y++)
    for (let x = 0; x < 28 * scale; x++) {
      const v = img[Math.floor(y / scale) * 28 + Math.floor(x / scale)] as number;
      const o = ((y + top) * w + (x + left)) * 4;
      rgba[o] = rgba[o + 1] = rgba[o + 2] = Math.round(255 * (1 - v));
    }
  return rgba;
}

function correlation(a: Float32Array, b: Float32Array): number {
  const mean = (x: Float32Array) => x.reduce((s, v) => s + v, 0) / x.length;
  const [ma, mb] = [mean(a), mean(b)];
  let [ab, aa, bb] = [0, 0, 0];
  for (let i = 0; i < a.length; i++) {
    ab += ((a[i] as number) - ma) * ((b[i] as number) - mb);
    aa += ((a[i] as number) - ma) ** 2;
    bb += ((b[i] as number) - mb) ** 2;
  }
  return ab / Math.sqrt(aa * bb);
}

describe('digit preprocessing (MNIST procedure)', () => {
  it('recovers MNIST test digits drawn 6× larger, dark on white, off-centre (mean correlation > 0.9)', () => {
    const scores: number[] = [];
    for (let i = 0; i < 50; i++) {
      const out = preprocessRgba(onPaper(i, 6, 30 + (i % 7) * 5, 10 + (i % 5) * 7, 260, 220), 260, 220);
      expect(out).toHaveLength(SIDE * SIDE);
      scores.push(correlation(out, original(i)));
    }
    const mean = scores.reduce((a, b) => a + b, 0) / scores.length;
    expect(mean).toBeGreaterThan(0.9);
    expect(Math.min(...scores)).toBeGreaterThan(0.75);
  });

  it('keeps white-on-black input as it is, fits the longer side to 20 px, centres the mass', () => {
    const w = 100;
    const rgba = new Uint8Array(w * w * 4);
    for (let i = 3; i < rgba.length; i += 4) rgba[i] = 255; // opaque black
    for (let y = 10; y < 90; y++) for (let x = 40; x < 50; x++) rgba.fill(255, (y * w + x) * 4, (y * w + x) * 4 + 3); // a white bar 10×80
    const out = preprocessRgba(rgba, w, w);
    const rows = Array.from({ length: 28 }, (_, y) => out.subarray(y * 28, y * 28 + 28).some((v) => v > 0.5));
    expect(rows.filter(Boolean)).toHaveLength(20);
    let [mass, cy, cx] = [0, 0, 0];
    out.forEach((v, k) => {
      mass += v;
      cy += v * Math.floor(k / 28); // pixel-index coordinates, MNIST's convention
      cx += v * (k % 28);
    });
    expect(Math.abs(cy / mass - 14)).toBeLessThanOrEqual(0.5);
    expect(Math.abs(cx / mass - 14)).toBeLessThanOrEqual(0.5);
  });

  it('refuses a blank image', () => {
    expect(() => preprocessRgba(new Uint8Array(40 * 40 * 4).fill(255), 40, 40)).toThrow(BlankImageError);
  });
});
