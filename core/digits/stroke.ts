/**
 * Stroke width, MNIST's way: a marker's stroke thicker than nearly all of MNIST's is thinned to
 * MNIST's range once the digit is 20 px high. The width is measured from ink area and skeleton
 * length (Zhang–Suen thinning) on the 28×28 result, and corrected by a grey-level erosion of the
 * working-resolution ink before it is scaled down again.
 */
import { IMAGE_SIDE } from '../contract.ts';

/**
 * MNIST's stroke widths in pixels of the 28×28 image: percentiles of strokeWidth() over the first
 * 10,000 training digits (measured once; test/stroke-width.test.ts measures them again). The measure
 * is rough for short strokes (a 1 reads thick) and MNIST has its own hairlines (p1 is 1.25 px), so only
 * a stroke thicker than MNIST's p99 (a marker on a small digit) is corrected, back to p99: MNIST's own
 * digits are left as they are (or nearly: the thickest 1% are trimmed to the 99th percentile).
 */
export const MNIST_STROKE = { p1: 1.25, p10: 1.79, median: 2.51, p90: 3.67, p99: 5.17 };

/** One Zhang–Suen thinning of a binary side×side image, in place; returns the skeleton's pixel count. */
function skeletonPixels(binary: Uint8Array, side: number): number {
  const at = (x: number, y: number) =>
    x < 0 || y < 0 || x >= side || y >= side ? 0 : (binary[y * side + x] as number);
  const remove: number[] = [];
  for (let changed = true; changed; ) {
    changed = false;
    for (const pass of [0, 1]) {
      remove.length = 0;
      for (let y = 0; y < side; y++)
        for (let x = 0; x < side; x++) {
          if (!binary[y * side + x]) continue;
          // Neighbours P2..P9, clockwise from north.
          const p = [
            at(x, y - 1),
            at(x + 1, y - 1),
            at(x + 1, y),
            at(x + 1, y + 1),
            at(x, y + 1),
            at(x - 1, y + 1),
            at(x - 1, y),
            at(x - 1, y - 1),
          ];
          const b = p.reduce((s, v) => s + v, 0);
          if (b < 2 || b > 6) continue;
          let a = 0;
          for (let k = 0; k < 8; k++) if (!p[k] && p[(k + 1) % 8]) a++;
          if (a !== 1) continue;
          const [p2, p4, p6, p8] = [p[0] as number, p[2] as number, p[4] as number, p[6] as number];
          if (pass === 0 ? p2 * p4 * p6 || p4 * p6 * p8 : p2 * p4 * p8 || p2 * p6 * p8) continue;
          remove.push(y * side + x);
        }
      for (const i of remove) binary[i] = 0;
      if (remove.length) changed = true;
    }
  }
  return binary.reduce((s, v) => s + v, 0);
}

/** Mean stroke width of a 28×28 digit (white on black) in pixels: ink area over stroke length. */
export function strokeWidth(image: Float32Array): number {
  const binary = Uint8Array.from(image, (v) => (v > 0.5 ? 1 : 0));
  const area = binary.reduce((s, v) => s + v, 0);
  const skeleton = skeletonPixels(binary, IMAGE_SIDE);
  // Thinning shortens a stroke of width w by about w (w/2 at each end): area = w·(skeleton + w).
  return area > 0 ? (Math.sqrt(skeleton * skeleton + 4 * area) - skeleton) / 2 : 0;
}

/**
 * The grey-level radius (in the ink image's pixels; < 0 thins) that brings a digit whose 28×28
 * reading is `mnist` to MNIST's typical stroke width, given its bounding box's longer side `side`.
 */
export function strokeCorrection(mnist: Float32Array, side: number): number {
  const width = strokeWidth(mnist);
  if (width <= MNIST_STROKE.p99) return 0;
  const target = MNIST_STROKE.p99;
  const pixelsPerMnistPixel = side / 20; // the box MNIST fits the digit's longer side into
  return Math.round(((target - width) / 2) * pixelsPerMnistPixel);
}
